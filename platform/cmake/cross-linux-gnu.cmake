# Shared by the toolchain files of this folder: a Debian cross toolchain (crossbuild-essential-*)
# and the target's development packages installed beside the build machine's (multiarch), as
# platform/cross-build installs them. The including file sets CARNET_CROSS_TRIPLET (the GNU
# triplet, also Debian's multiarch folder), CMAKE_SYSTEM_PROCESSOR and CARNET_CROSS_QEMU.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${CARNET_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${CARNET_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${CARNET_CROSS_TRIPLET})

# The target's libraries are in /usr/lib/<triplet> and its C library in /usr/<triplet>: search
# them, never the build machine's; programs (pkg-config, the shell) are the build machine's.
set(CMAKE_FIND_ROOT_PATH /usr/${CARNET_CROSS_TRIPLET} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the target's .pc files only (sqlite3, libsodium, libcurl).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${CARNET_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
unset(ENV{PKG_CONFIG_PATH})

# cereal is headers only; Debian's CMake package for it is the build machine's (cereal/).
set(cereal_DIR ${CMAKE_CURRENT_LIST_DIR}/cereal CACHE PATH "cereal's package" FORCE)

# Test binaries run under qemu-user (ctest, and catch_discover_tests when it lists their tests)
# with the target's multiarch runtime: its loader, libc and libstdc++ from /lib/<triplet>, as
# the libraries linked were built against. "-L /" keeps qemu from taking the loader from
# /usr/<triplet> (the cross toolchain's copy, another glibc build): the two glibcs share private
# structures, and mixed they corrupted pthread_create's stack cache (a thread test spun forever).
set(CMAKE_CROSSCOMPILING_EMULATOR ${CARNET_CROSS_QEMU} -L /)
