// Stands in for xgrad::viz when it is not built (no MathGL, or -DXGRAD_BUILD_VIZ=OFF), so that
// the examples build all the same; Cli::parse refuses --plot first, with the reason.
#include "xgrad/core/error.hpp"
#include "xgrad/viz/plot.hpp"

namespace xgrad::viz {

namespace {
[[noreturn]] void missing() { fail("this build has no xgrad::viz (MathGL, Debian libmgl-dev, and -DXGRAD_BUILD_VIZ=ON)"); }
}  // namespace

void heat_map(const HeatMap&, const std::string&, const Figure&) { missing(); }
void heat_maps(const std::vector<HeatMap>&, const std::string&, const Figure&) { missing(); }
void training_curves(const optim::History&, const std::string&, const Figure&) { missing(); }
optim::History read_csv_log(const std::string&) { missing(); }

}  // namespace xgrad::viz
