#pragma once
#include <optional>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// Rows of a table by i64 index: ids [...] -> [..., dim]. Parameter "weight" [num, dim] ~ N(0, 1).
/// With padding_idx, that row starts at zero and never receives a gradient; `freeze` keeps the
/// whole table fixed (pretrained embeddings).
class Embedding : public UnaryModule {
 public:
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, std::optional<std::int64_t> padding_idx = {},
            bool freeze = false);
  std::string type_name() const override { return "Embedding"; }
  Tensor forward(const Tensor& ids) override;

  Tensor weight;
  std::optional<std::int64_t> padding_idx;
};

}  // namespace xgrad::nn
