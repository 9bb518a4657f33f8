#pragma once
// The consumer's own data/batch.hpp (same path as xgrad's; see core/tensor.hpp).
namespace app::data {
struct Batch {
  int first = 0, size = 0;
};
}  // namespace app::data
