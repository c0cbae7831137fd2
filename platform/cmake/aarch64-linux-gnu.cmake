# 64-bit ARM Linux (arm64, as most Android tablets today): platform/cross-build arm64.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CARNET_CROSS_TRIPLET aarch64-linux-gnu)
set(CARNET_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/cross-linux-gnu.cmake)
