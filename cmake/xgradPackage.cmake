# `make package`: CPack's DEB generator puts everything `cmake --install` installs (the library,
# the headers under include/xgrad/, the CMake package and xgrad.pc) under /usr, in one -dev
# package. The Makefile configures a library-only build dir (build-package) with
# CMAKE_INSTALL_PREFIX=/usr, so GNUInstallDirs picks Debian's multiarch libdir
# (/usr/lib/x86_64-linux-gnu), where find_package and pkg-config look by default.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libxgrad-dev)
set(CPACK_PACKAGE_VENDOR xgrad)
set(CPACK_PACKAGE_CONTACT "xgrad maintainers <maintainers@users.noreply.b-seed-9f334880.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# CPACK_PACKAGE_VERSION defaults to project()'s version.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # libxgrad-dev_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${PROJECT_DESCRIPTION}
 Tensors with a runtime dtype, a define-by-run tape with higher-order gradients, recurrent
 cells and layers, attention, losses, optimizers and sequence batching. Headers under
 /usr/include/xgrad, the library (xgrad::xgrad through find_package(xgrad CONFIG), or
 pkg-config xgrad).")
if(XGRAD_ARCH)
  string(APPEND CPACK_DEBIAN_PACKAGE_DESCRIPTION "
 Built with -march=${XGRAD_ARCH}: programs using it need a CPU of that level.")
endif()
# What the installed headers include, and what the library links. The lower bounds are the
# versions it was built against; fmt's next major has another ABI (its inline namespace fmt::vN),
# so a libxgrad built against fmt 9 needs fmt 9.
string(REGEX MATCH "^[0-9]+" fmt_major "${fmt_VERSION}")
math(EXPR fmt_next_major "${fmt_major} + 1")
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libxtensor-dev (>= ${xtensor_VERSION})"
    "libxsimd-dev (>= ${xsimd_VERSION})"
    "libxtensor-blas-dev (>= ${xtensor-blas_VERSION})"
    "libopenblas-dev"
    "libfmt-dev (>= ${fmt_VERSION})"
    "libfmt-dev (<< ${fmt_next_major})"
    "nlohmann-json3-dev (>= ${nlohmann_json_VERSION})")
list(JOIN CPACK_DEBIAN_PACKAGE_DEPENDS ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
# xgrad::dist (installed when MPI was found) links Open MPI; find_package(xgrad) offers it only
# where MPI is found again.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libopenmpi-dev")
include(CPack)
