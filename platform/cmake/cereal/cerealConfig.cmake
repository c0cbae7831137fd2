# cereal for the cross builds (cross-linux-gnu.cmake): headers only, shared by every architecture
# in /usr/include/cereal. Debian's own package configuration sits under the build machine's
# multiarch folder and refuses a target whose pointers are not 64-bit (armhf).
if(NOT TARGET cereal::cereal)
  add_library(cereal::cereal INTERFACE IMPORTED)
  set_target_properties(cereal::cereal PROPERTIES INTERFACE_INCLUDE_DIRECTORIES /usr/include)
endif()
set(cereal_FOUND TRUE)
