# The steps of the consumer tests (tests/consumer/CMakeLists.txt), run with cmake -P:
#   -DSTEP=install           install the xgrad build into PREFIX (emptied first) and check that
#                            every header, the library, the CMake package and xgrad.pc are there
#   -DSTEP=find_package      configure app/ against PREFIX with find_package, build it, run it
#   -DSTEP=pkg_config        compile app/main.cpp with `pkg-config --cflags --libs xgrad`, run it
#   -DSTEP=add_subdirectory  configure app/ with add_subdirectory(SOURCE_DIR), build it, run it
#   -DSTEP=fetchcontent      configure app/ with FetchContent (SOURCE_DIR): the checks of a
#                            subproject run at configure time; the build is add_subdirectory's
# Any failure is a FATAL_ERROR, which fails the test.
cmake_minimum_required(VERSION 3.21)

function(run what)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "${what}: ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}): ${shown}")
  endif()
endfunction()

# The consumer prints one line and exits 0 only when its checks pass.
function(run_consumer exe)
  execute_process(COMMAND ${exe} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${exe}: ${out}${err}")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "^consumer: loss [0-9.]+ -> [0-9.]+ after 40 steps")
    message(FATAL_ERROR "the consumer failed (${rc})")
  endif()
endfunction()

# Configure, build and run app/ with these extra cache entries.
function(build_app dir)
  set(launcher)
  if(CCACHE)
    set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE})
  endif()
  run("configure the consumer" ${CMAKE_COMMAND} -S ${APP_DIR} -B ${dir} -G ${GENERATOR}
      -DCMAKE_CXX_COMPILER=${CXX} ${launcher} "-DCMAKE_CXX_FLAGS=${SANITIZE_FLAGS}"
      "-DCMAKE_EXE_LINKER_FLAGS=${SANITIZE_FLAGS}" ${ARGN})
  run("build the consumer" ${CMAKE_COMMAND} --build ${dir} --parallel ${JOBS})
  run_consumer(${dir}/consumer)
endfunction()

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE ${PREFIX})  # so a file left by an earlier install cannot stand in for a missing one
  run("install xgrad" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX} --config ${CONFIG})
  set(missing)
  file(GLOB_RECURSE headers RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/core/*.hpp ${SOURCE_DIR}/autograd/*.hpp
       ${SOURCE_DIR}/nn/*.hpp ${SOURCE_DIR}/optim/*.hpp ${SOURCE_DIR}/data/*.hpp)
  foreach(file IN LISTS headers ITEMS xgrad.hpp)
    list(APPEND expected ${INCLUDEDIR}/xgrad/${file})
  endforeach()
  list(APPEND expected ${LIBDIR}/${LIBRARY} ${LIBDIR}/cmake/xgrad/xgradConfig.cmake
       ${LIBDIR}/cmake/xgrad/xgradConfigVersion.cmake ${LIBDIR}/cmake/xgrad/xgradTargets.cmake
       ${LIBDIR}/pkgconfig/xgrad.pc)
  foreach(file IN LISTS expected)
    if(NOT EXISTS ${PREFIX}/${file})
      list(APPEND missing ${file})
    endif()
  endforeach()
  if(missing)
    list(JOIN missing "\n  " missing)
    message(FATAL_ERROR "not installed:\n  ${missing}")
  endif()
  file(GLOB_RECURSE installed ${PREFIX}/*)
  list(LENGTH installed n)
  list(LENGTH headers n_headers)
  math(EXPR n_headers "${n_headers} + 1")
  message(STATUS "installed ${n} files in ${PREFIX} (${n_headers} headers)")

elseif(STEP STREQUAL "find_package")
  file(REMOVE_RECURSE ${WORK_DIR})  # a fresh project each time; ccache keeps the rebuild cheap
  build_app(${WORK_DIR} -DCMAKE_BUILD_TYPE=${CONFIG} -DCMAKE_PREFIX_PATH=${PREFIX})
  # The xgrad it found is the one just installed (not one elsewhere on the system).
  file(STRINGS ${WORK_DIR}/CMakeCache.txt found REGEX "^xgrad_DIR:")
  if(NOT found STREQUAL "xgrad_DIR:PATH=${PREFIX}/${LIBDIR}/cmake/xgrad")
    message(FATAL_ERROR "find_package(xgrad) found ${found}, not the package in ${PREFIX}")
  endif()

elseif(STEP STREQUAL "pkg_config")
  file(REMOVE_RECURSE ${WORK_DIR})
  file(MAKE_DIRECTORY ${WORK_DIR})
  set(ENV{PKG_CONFIG_PATH} ${PREFIX}/${LIBDIR}/pkgconfig)
  execute_process(COMMAND ${PKG_CONFIG} --variable=pcfiledir xgrad OUTPUT_VARIABLE pcfiledir
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT pcfiledir STREQUAL "${PREFIX}/${LIBDIR}/pkgconfig")
    message(FATAL_ERROR "pkg-config found xgrad.pc in '${pcfiledir}', not in ${PREFIX}/${LIBDIR}/pkgconfig")
  endif()
  foreach(what cflags libs)
    execute_process(COMMAND ${PKG_CONFIG} --${what} xgrad OUTPUT_VARIABLE ${what} RESULT_VARIABLE rc
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "pkg-config --${what} xgrad failed (${rc})")
    endif()
    separate_arguments(${what} UNIX_COMMAND "${${what}}")
  endforeach()
  execute_process(COMMAND ${PKG_CONFIG} --variable=libdir xgrad OUTPUT_VARIABLE libdir
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  separate_arguments(sanitize UNIX_COMMAND "${SANITIZE_FLAGS}")
  # As in a Makefile: the user's flags and include dirs first, then pkg-config's. -O1 keeps the
  # compile short; the rpath finds a shared libxgrad.so where it was installed.
  run("compile and link with pkg-config" ${CCACHE} ${CXX} -std=c++20 -O1 ${sanitize} -I${APP_DIR}
      ${APP_DIR}/main.cpp ${cflags} -o ${WORK_DIR}/consumer ${libs} -Wl,-rpath,${libdir})
  run_consumer(${WORK_DIR}/consumer)

elseif(STEP STREQUAL "add_subdirectory")
  # The build dir stays (its objects make a re-run incremental); its cache starts afresh, and the
  # build type is given empty every time, the case in which a top-level xgrad would pick Release.
  set(fresh --fresh)
  if(CMAKE_VERSION VERSION_LESS 3.24)
    file(REMOVE ${WORK_DIR}/CMakeCache.txt)
    set(fresh)
  endif()
  build_app(${WORK_DIR} ${fresh} -DCMAKE_BUILD_TYPE= -DXGRAD_SOURCE_DIR=${SOURCE_DIR})

elseif(STEP STREQUAL "fetchcontent")
  file(REMOVE_RECURSE ${WORK_DIR})
  run("configure the consumer with FetchContent" ${CMAKE_COMMAND} -S ${APP_DIR} -B ${WORK_DIR} -G ${GENERATOR}
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE= -DXGRAD_SOURCE_DIR=${SOURCE_DIR} -DXGRAD_FETCHCONTENT=ON)

else()
  message(FATAL_ERROR "consumer.cmake: unknown STEP '${STEP}'")
endif()
