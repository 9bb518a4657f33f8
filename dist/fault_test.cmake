# cmake "-DMPIRUN=mpirun -np 2 ..." -DPROGRAM=... -DFAULT=kill|throw -P fault_test.cmake
# Runs PROGRAM on two ranks; at step 5 rank 1 SIGKILLs itself or throws an xgrad::Error while
# rank 0 waits in an allreduce. Passes when mpirun ends non-zero within 60 s and its output names
# rank 1.
separate_arguments(mpirun UNIX_COMMAND "${MPIRUN}")
string(TIMESTAMP start "%s")
execute_process(COMMAND ${mpirun} ${PROGRAM} ${FAULT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 90)
string(TIMESTAMP end "%s")
math(EXPR seconds "${end} - ${start}")
message(STATUS "mpirun returned '${rc}' after ${seconds} s\n${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job ended successfully although rank 1 failed (${FAULT})")
endif()
if(rc MATCHES "timeout" OR seconds GREATER 60)
  message(FATAL_ERROR "the job took ${seconds} s to end after rank 1 failed (${FAULT}); the bound is 60 s")
endif()
if(NOT "${out}${err}" MATCHES "rank 1")
  message(FATAL_ERROR "the output does not name rank 1")
endif()
if(FAULT STREQUAL "throw" AND NOT "${out}${err}" MATCHES "injected fault at step 5")
  message(FATAL_ERROR "the output does not carry rank 1's error message")
endif()
