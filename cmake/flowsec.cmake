# Shared compile settings for every flowsec target.
add_library(flowsec_options INTERFACE)
target_compile_options(flowsec_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  $<$<BOOL:${FLOWSEC_WERROR}>:-Werror>)
if(FLOWSEC_SANITIZE)
  target_compile_options(flowsec_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(flowsec_options INTERFACE -fsanitize=address,undefined)
endif()
if(FLOWSEC_FUZZ)
  # Everything is instrumented for coverage; only fuzz targets link the libFuzzer main.
  target_compile_options(flowsec_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(flowsec_options INTERFACE -fsanitize=address,undefined)
endif()

# flowsec_module(NAME DEPS dep...): a static library src/NAME with its sources
# globbed, public include root src/ restricted to the module's own headers and
# those of its declared dependencies.
function(flowsec_module name)
  cmake_parse_arguments(M "" "" "DEPS;LIBS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  # A module with headers only (a contract not implemented yet, or templates)
  # is an INTERFACE library with the same include-root rule.
  if(srcs)
    add_library(flowsec_${name} STATIC ${srcs})
    set(scope PUBLIC)
  else()
    add_library(flowsec_${name} INTERFACE)
    set(scope INTERFACE)
  endif()
  # Each module sees only its own folder through "flowsec/<name>/..."-style
  # includes: we expose src/<name> under a private include prefix so that
  # #include "ipfix/x.hpp" only works where flowsec_ipfix is linked.
  set(inc ${CMAKE_BINARY_DIR}/include_roots/${name})
  file(MAKE_DIRECTORY ${inc})
  if(NOT EXISTS ${inc}/${name})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${inc}/${name} SYMBOLIC)
  endif()
  target_include_directories(flowsec_${name} ${scope} ${inc})
  target_link_libraries(flowsec_${name} ${scope} flowsec_options ${M_LIBS})
  foreach(dep IN LISTS M_DEPS)
    target_link_libraries(flowsec_${name} ${scope} flowsec_${dep})
  endforeach()
  add_library(flowsec::${name} ALIAS flowsec_${name})
endfunction()
