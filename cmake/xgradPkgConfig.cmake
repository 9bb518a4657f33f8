# xgrad.pc, installed to <libdir>/pkgconfig: what a project without CMake needs to compile against
# xgrad and link it:
#   c++ -std=c++20 app.cpp $(pkg-config --cflags --libs xgrad)
# Cflags carry what xgrad::xgrad carries (its include dir, XTENSOR_USE_XSIMD, the -march of the
# build, which must match the library's). xtensor, xsimd and fmt are in Requires: xgrad's headers
# include them. LIBXSMM, OpenBLAS and threads are used inside the library only: a shared libxgrad.so
# records them itself (Requires.private / Libs.private), a static libxgrad.a cannot, so there they
# are in Requires / Libs and a plain `pkg-config --libs xgrad` links (no --static needed).
# The .pc files of xtensor, xsimd, fmt and openblas come with their Debian -dev packages.

# The prefix relative to the .pc file's folder, so the installed tree can move.
file(RELATIVE_PATH XGRAD_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" XGRAD_PC_TO_PREFIX "${XGRAD_PC_TO_PREFIX}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "xgrad.pc: CMAKE_INSTALL_LIBDIR and CMAKE_INSTALL_INCLUDEDIR must be relative to the prefix")
endif()

set(XGRAD_PC_CFLAGS "-DXTENSOR_USE_XSIMD")
if(XGRAD_ARCH)
  string(APPEND XGRAD_PC_CFLAGS " -march=${XGRAD_ARCH}")
endif()
set(XGRAD_PC_REQUIRES "xtensor xsimd fmt")
get_target_property(XGRAD_TYPE xgrad TYPE)
if(XGRAD_TYPE STREQUAL "SHARED_LIBRARY")
  set(XGRAD_PC_REQUIRES_PRIVATE "libxsmm openblas")
  set(XGRAD_PC_LIBS "")
  set(XGRAD_PC_LIBS_PRIVATE "-pthread")
else()
  string(APPEND XGRAD_PC_REQUIRES " libxsmm openblas")
  set(XGRAD_PC_REQUIRES_PRIVATE "")
  set(XGRAD_PC_LIBS "-pthread")
  set(XGRAD_PC_LIBS_PRIVATE "")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/xgrad.pc.in ${CMAKE_CURRENT_BINARY_DIR}/xgrad.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/xgrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
