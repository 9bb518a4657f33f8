#pragma once
// dist/'s own helpers around MPI calls (not installed: users never include mpi.h through xgrad).
#include <mpi.h>

#include "xgrad/core/dtype.hpp"

namespace xgrad::dist::detail {

/// Throws an xgrad::Error "dist::<what>: MPI failed on rank r of n on host: <MPI's text>" unless
/// rc is MPI_SUCCESS.
void check_mpi(int rc, const char* what);
/// The MPI datatype of a dtype.
MPI_Datatype mpi_type(Dtype dtype);

}  // namespace xgrad::dist::detail
