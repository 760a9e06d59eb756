# CMake package config for slicewise: find_package(slicewise) gives the imported target
# slicewise::slicewise (the shared library plus include/slicewise.h).
#
# Works from two layouts:
# - installed: <prefix>/lib/cmake/slicewise/slicewise-config.cmake, <prefix>/include/slicewise.h,
#   <prefix>/lib/libslicewise.so
# - a source checkout: <checkout>/cmake/slicewise-config.cmake (pass -Dslicewise_DIR=<checkout>/cmake),
#   the header in <checkout>/include, the library in SLICEWISE_LIBRARY_DIR or else
#   <checkout>/target/release or <checkout>/target/debug (the first holding it).
include_guard(GLOBAL)

get_filename_component(_sw_here "${CMAKE_CURRENT_LIST_DIR}" ABSOLUTE)
if(EXISTS "${_sw_here}/../include/slicewise.h")
  get_filename_component(_sw_root "${_sw_here}/.." ABSOLUTE)
  set(_sw_include "${_sw_root}/include")
  set(_sw_hints ${SLICEWISE_LIBRARY_DIR} "${_sw_root}/target/release" "${_sw_root}/target/debug")
else()
  get_filename_component(_sw_root "${_sw_here}/../../.." ABSOLUTE)
  set(_sw_include "${_sw_root}/include")
  set(_sw_hints ${SLICEWISE_LIBRARY_DIR} "${_sw_root}/lib" "${_sw_root}/lib64")
endif()

find_library(SLICEWISE_LIBRARY NAMES slicewise HINTS ${_sw_hints} NO_DEFAULT_PATH)
if(NOT SLICEWISE_LIBRARY OR NOT EXISTS "${_sw_include}/slicewise.h")
  set(slicewise_FOUND FALSE)
  set(slicewise_NOT_FOUND_MESSAGE
      "slicewise: libslicewise not found in ${_sw_hints} or slicewise.h not in ${_sw_include}")
  return()
endif()

if(NOT TARGET slicewise::slicewise)
  add_library(slicewise::slicewise SHARED IMPORTED)
  set_target_properties(slicewise::slicewise PROPERTIES
    IMPORTED_LOCATION "${SLICEWISE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${_sw_include}")
endif()
set(slicewise_INCLUDE_DIRS "${_sw_include}")
set(slicewise_LIBRARIES slicewise::slicewise)
