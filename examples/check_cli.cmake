# The examples' command line, run by CTest (examples/CMakeLists.txt):
#   cmake -DPROGRAM=path -DMODE=help -DFLAGS="--a;--b" -P check_cli.cmake
#     PROGRAM --help exits 0, prints "Usage: <name>" and a line of its own for every flag in FLAGS
#     (the flag, its type and default, then its description).
#   cmake -DPROGRAM=path -DMODE=reject -DARGS="--bogus" -DEXPECT="regex" -P check_cli.cmake
#     PROGRAM ARGS exits non-zero (but not from a crash) and prints CLI11's message matching EXPECT.
#   cmake -DPROGRAM=path -DMODE=plot -DARGS="--tiny;--plot;--plot-dir;D" -DFILES="D/a.png;..." -P check_cli.cmake
#     PROGRAM ARGS exits 0 and writes each of FILES (PNG, not empty), printing "picture: <file>".
cmake_minimum_required(VERSION 3.21)
get_filename_component(name ${PROGRAM} NAME)

if(MODE STREQUAL "help")
  execute_process(COMMAND ${PROGRAM} --help RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${name} --help exited with ${status}:\n${out}${err}")
  endif()
  if(NOT out MATCHES "Usage: ${name} \\[OPTIONS\\]")
    message(FATAL_ERROR "${name} --help prints no usage line:\n${out}")
  endif()
  foreach(flag --help ${FLAGS})
    # "  --flag TYPE=default   description" or, for a long left column, the description on the next line
    if(NOT out MATCHES "\n  (-h,)?${flag}( [^\n]*)?\n?[ ]+[^ \n][^\n]*\n")
      message(FATAL_ERROR "${name} --help does not describe ${flag}:\n${out}")
    endif()
  endforeach()
  # and nothing more than FLAGS: a flag added to a program is added to its test
  string(REGEX MATCHALL "\n  (-h,)?--[a-z-]+" listed "${out}")
  list(LENGTH listed count)
  list(LENGTH FLAGS expected)
  math(EXPR expected "${expected} + 1")
  if(NOT count EQUAL expected)
    message(FATAL_ERROR "${name} --help lists ${count} flags, the test names ${expected} (--help ${FLAGS}):\n${out}")
  endif()
elseif(MODE STREQUAL "reject")
  execute_process(COMMAND ${PROGRAM} ${ARGS} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(status EQUAL 0 OR NOT status MATCHES "^[0-9]+$" OR status GREATER 127)
    message(FATAL_ERROR "${name} ${ARGS} should exit with an error code, exited with '${status}':\n${out}${err}")
  endif()
  if(NOT err MATCHES "${EXPECT}")
    message(FATAL_ERROR "${name} ${ARGS}: expected a message matching '${EXPECT}' on stderr, got:\n${err}")
  endif()
  message(STATUS "${name} ${ARGS} -> exit ${status}: ${err}")
elseif(MODE STREQUAL "plot")
  file(REMOVE ${FILES})
  execute_process(COMMAND ${PROGRAM} ${ARGS} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${name} ${ARGS} exited with ${status}:\n${out}${err}")
  endif()
  foreach(png ${FILES})
    file(SIZE ${png} bytes)
    file(READ ${png} magic LIMIT 4 HEX)
    if(NOT magic STREQUAL "89504e47" OR bytes LESS 1000 OR NOT out MATCHES "picture: [^\n]*${png}")
      message(FATAL_ERROR "${name} ${ARGS}: ${png} is missing, not a PNG or not announced:\n${out}${err}")
    endif()
  endforeach()
else()
  message(FATAL_ERROR "check_cli.cmake: MODE is help, reject or plot, got '${MODE}'")
endif()
