# 32-bit ARM Linux with hardware floating point (armhf, as older Android tablets): 32-bit size_t
# and pointers, and stricter alignment. platform/cross-build armhf.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CARNET_CROSS_TRIPLET arm-linux-gnueabihf)
set(CARNET_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/cross-linux-gnu.cmake)
# GCC notes, for every std::sort over our types, that GCC 7.1 changed how such arguments are
# passed on ARM: a matter for code mixed from compilers before 7.1, which libcarnet never is.
set(CMAKE_CXX_FLAGS_INIT -Wno-psabi)
