#include "xgrad/nn/embedding.hpp"

#include <algorithm>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/random.hpp"

namespace xgrad::nn {

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, std::optional<std::int64_t> padding,
                     bool freeze)
    : padding_idx(padding) {
  if (num_embeddings < 0 || embedding_dim < 0)
    fail("Embedding: num_embeddings and embedding_dim must be non-negative, got {} and {}", num_embeddings,
         embedding_dim);
  if (padding && (*padding < -num_embeddings || *padding >= num_embeddings))
    fail("Embedding: padding_idx {} is out of range for {} embeddings", *padding, num_embeddings);
  if (padding && *padding < 0) padding_idx = *padding + num_embeddings;
  Tensor w = randn({num_embeddings, embedding_dim});  // f32, like every fresh parameter
  if (padding_idx) std::fill_n(w.data<float>() + *padding_idx * embedding_dim, embedding_dim, 0.0f);
  weight = register_parameter("weight", w, !freeze);
}

Tensor Embedding::forward(const Tensor& ids) {
  if (ids.dtype() != i64) fail("Embedding: ids must be i64, got {} {}", dtype_name(ids.dtype()), ids.shape());
  const std::int64_t num = weight.shape()[0];
  const std::int64_t* id = ids.data<std::int64_t>();
  for (std::int64_t k = 0, n = ids.numel(); k < n; ++k)  // as PyTorch: no wrap-around of negative ids
    if (id[k] < 0 || id[k] >= num)
      fail("Embedding: id {} is out of range for a table of {} embeddings (ids shape {})", id[k], num, ids.shape());
  Shape out = ids.shape();
  out.push_back(weight.shape()[1]);
  Tensor rows = index_select(weight, 0, reshape(ids, {-1}));  // [N, dim]
  if (padding_idx) {
    // same values, but the padding row's gradient is cut: rows * keep + rows.detach() * (1 - keep)
    Tensor keep = ne(reshape(ids, {-1, 1}), scalar(static_cast<double>(*padding_idx), i64)).to(weight.dtype());
    rows = rows * keep + rows.detach() * (1.0 - keep);
  }
  return reshape(rows, out);
}

}  // namespace xgrad::nn
