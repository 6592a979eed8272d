# Shared compile settings for every flowsec target.
add_library(flowsec_options INTERFACE)
target_compile_options(flowsec_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  $<$<BOOL:${FLOWSEC_WERROR}>:-Werror>
  # GCC 12 at -O3 warns of overlapping memcpy inside libstdc++'s std::string (GCC bug
  # 105651, a false positive fixed in GCC 13).
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)

# Link-time optimisation of what ships (FLOWSEC_LTO, the release preset): the modules are
# compiled to fat LTO objects (GIMPLE and machine code); programs marked with
# flowsec_lto(TARGET) — flowsec and the benchmarks — are linked with -flto, so calls across
# modules on the per-packet path (parser, flow cache, encoder) can be inlined. Every other
# link (the tests) takes -fno-lto and uses the machine code, at no link-time cost.
# docs/benchmarks.md: -O3 with LTO took the probe's instructions down 11%, its CPU 7%.
if(FLOWSEC_LTO)
  target_link_options(flowsec_options INTERFACE
    $<IF:$<BOOL:$<TARGET_PROPERTY:FLOWSEC_LTO_LINK>>,-flto=auto,-fno-lto>)
endif()
function(flowsec_lto_objects target)
  if(FLOWSEC_LTO)
    target_compile_options(${target} PRIVATE -flto=auto -ffat-lto-objects)
  endif()
endfunction()
function(flowsec_lto target)
  set_property(TARGET ${target} PROPERTY FLOWSEC_LTO_LINK ON)
endfunction()
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
    flowsec_lto_objects(flowsec_${name})
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

# flowsec_runtime_library(PREFIX PACKAGE): a pkg-config PACKAGE whose library a module
# opens at run time (common/shared_library.hpp) instead of linking it, so that programs
# not using it do not load it and its dependencies at start-up. Creates:
#  - flowsec_runtime_PREFIX, an INTERFACE target with PACKAGE's include directories and
#    compile flags, ${CMAKE_DL_LIBS}, and the compile definition
#    FLOWSEC_<PACKAGE>_SONAME="<soname>" (FLOWSEC_LIBCURL_SONAME for libcurl): the SONAME
#    of the library pkg-config resolves, the name the loader will look for. It does not
#    link the library.
#  - PkgConfig::PREFIX (GLOBAL), for programs that link the library themselves (test peers).
# Configuration fails when the library or its SONAME cannot be found.
function(flowsec_runtime_library prefix package)
  pkg_check_modules(${prefix} REQUIRED IMPORTED_TARGET GLOBAL ${package})
  # The package's own library comes first in its Libs (-lcurl, then what it needs).
  list(GET ${prefix}_LINK_LIBRARIES 0 library)
  if(NOT library MATCHES "\\.so$" OR NOT EXISTS "${library}")
    message(FATAL_ERROR "${package}: no shared library to load at run time (pkg-config "
                        "resolved '${library}')")
  endif()
  set(objdump "${CMAKE_OBJDUMP}")
  if(NOT objdump)
    find_program(objdump NAMES objdump llvm-objdump)
  endif()
  if(objdump)
    execute_process(COMMAND "${objdump}" -p "${library}" OUTPUT_VARIABLE headers
                    RESULT_VARIABLE rc ERROR_QUIET)
  endif()
  if(NOT objdump OR NOT rc EQUAL 0 OR NOT headers MATCHES "SONAME[ \t]+([^ \t\r\n]+)")
    message(FATAL_ERROR "${package}: cannot read the SONAME of ${library} "
                        "(objdump -p, objdump: '${objdump}')")
  endif()
  set(soname "${CMAKE_MATCH_1}")
  message(STATUS "${package}: loaded at run time as ${soname}")
  string(MAKE_C_IDENTIFIER "${package}" id)
  string(TOUPPER "${id}" id)
  add_library(flowsec_runtime_${prefix} INTERFACE)
  get_target_property(includes PkgConfig::${prefix} INTERFACE_INCLUDE_DIRECTORIES)
  get_target_property(options PkgConfig::${prefix} INTERFACE_COMPILE_OPTIONS)
  if(includes)
    target_include_directories(flowsec_runtime_${prefix} SYSTEM INTERFACE ${includes})
  endif()
  if(options)
    target_compile_options(flowsec_runtime_${prefix} INTERFACE ${options})
  endif()
  target_compile_definitions(flowsec_runtime_${prefix} INTERFACE
                             FLOWSEC_${id}_SONAME="${soname}")
  target_link_libraries(flowsec_runtime_${prefix} INTERFACE ${CMAKE_DL_LIBS})
endfunction()
