#pragma once
// The differentiable primitives every layer is composed from, and a few composites.
// Each doc line gives the formula and its derivative; the backward of each op is written
// with these same ops, so gradients of gradients come for free. Binary ops broadcast like
// NumPy; a tensor-scalar op converts the scalar to the tensor's dtype.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad {

/// A list of axes: sum(x, 1), sum(x, {0, 2}).
struct Axes {
  Axes(std::int64_t axis) : list{axis} {}  // NOLINT: implicit by design
  Axes(std::initializer_list<std::int64_t> axes) : list(axes) {}
  Axes(const std::vector<std::int64_t>& axes) : list(axes.begin(), axes.end()) {}  // NOLINT
  xt::svector<std::int64_t, 5> list;
};

// --- elementwise, unary (ops_elementwise.cpp) ------------------------------------------------
Tensor neg(const Tensor& x);      ///< -x;            d/dx = -1
Tensor exp(const Tensor& x);      ///< e^x;           d/dx = e^x
Tensor log(const Tensor& x);      ///< ln x;          d/dx = 1/x
Tensor tanh(const Tensor& x);     ///< tanh x;        d/dx = 1 - tanh(x)^2
Tensor sigmoid(const Tensor& x);  ///< 1/(1+e^-x);    d/dx = s(1 - s)
Tensor relu(const Tensor& x);     ///< max(x, 0), NaN stays NaN;  d/dx = [x > 0]
Tensor sqrt(const Tensor& x);     ///< x^(1/2);       d/dx = 1/(2 sqrt x)
Tensor abs(const Tensor& x);      ///< |x|;           d/dx = sign x
Tensor pow(const Tensor& x, double p);  ///< x^p;     d/dx = p x^(p-1) (0 for p = 0)
Tensor sin(const Tensor& x);      ///< sin x;         d/dx = cos x
Tensor cos(const Tensor& x);      ///< cos x;         d/dx = -sin x
/// Bounds x to [min, max] (either may be left out; NaN stays NaN; min > max gives max);
/// d/dx = 1 where min <= x <= max, bounds included, 0 elsewhere (torch.clamp).
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);
/// clamp under NumPy's and Keras's name.
Tensor clip(const Tensor& x, std::optional<double> min, std::optional<double> max);
// Piecewise constant: recorded with a zero derivative, so gradients reach x as zeros (PyTorch).
Tensor sign(const Tensor& x);     ///< -1, 0 or 1; 0 for NaN (PyTorch)
Tensor floor(const Tensor& x);    ///< largest integer <= x
Tensor round(const Tensor& x);    ///< nearest integer, halves to even (torch.round)
/// log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (torch.nn.functional.softplus);
/// d/dx = sigmoid(beta x), and 1 where beta x > threshold. log1p keeps very negative x exact.
Tensor softplus(const Tensor& x, double beta = 1, double threshold = 20);

// --- elementwise, binary with broadcasting ---------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);      ///< a + b;  d/da = 1, d/db = 1
Tensor sub(const Tensor& a, const Tensor& b);      ///< a - b;  d/da = 1, d/db = -1
Tensor mul(const Tensor& a, const Tensor& b);      ///< a * b;  d/da = b, d/db = a
Tensor div(const Tensor& a, const Tensor& b);      ///< a / b;  d/da = 1/b, d/db = -a/b^2
Tensor pow(const Tensor& a, const Tensor& b);      ///< a^b;    d/da = b a^(b-1) (0 where b = 0), d/db = a^b ln a (0 where a = 0, b >= 0)
Tensor maximum(const Tensor& a, const Tensor& b);  ///< max(a, b); the gradient goes to the larger, halved at ties
/// cond ? a : b, elementwise (cond of any dtype, nonzero = true); d/da = [cond], d/db = [!cond]
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

/// Comparisons: 1 where true, 0 elsewhere, in the dtype of `a` (never differentiated).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
/// 1 where x is finite, 0 where it is NaN or +-Inf.
Tensor isfinite(const Tensor& x);

Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// --- reductions (ops_reduce.cpp) ----------------------------------------------------------------
Tensor sum(const Tensor& x);                                       ///< all elements; d/dx = 1
Tensor sum(const Tensor& x, const Axes& axes, bool keepdim = false);
Tensor mean(const Tensor& x);                                      ///< sum / count
Tensor mean(const Tensor& x, const Axes& axes, bool keepdim = false);
/// Values picked along an axis with their positions (max, sort, topk).
struct ValuesIndices {
  Tensor values;   ///< differentiable: the gradient goes to the picked positions
  Tensor indices;  ///< i64 positions along the axis
};
using MaxResult = ValuesIndices;
/// Maximum along an axis with its indices; the gradient goes to the (first) maximum.
MaxResult max(const Tensor& x, std::int64_t axis, bool keepdim = false);
/// Maximum of all elements (rank 0); the gradient is shared evenly by tied maxima (PyTorch).
Tensor max(const Tensor& x);
/// Position of the maximum along an axis (the first of ties; a NaN counts as the maximum), i64;
/// without an axis, the position in the flattened tensor (torch.argmax).
Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim = false);
Tensor argmax(const Tensor& x);
/// Position of the minimum, likewise (a NaN counts as the minimum, as in torch.argmin).
Tensor argmin(const Tensor& x, std::int64_t axis, bool keepdim = false);
Tensor argmin(const Tensor& x);
/// The vector p-norm (sum |x|^p)^(1/p) over axes (torch.linalg.vector_norm), for any p > 0 and
/// p = inf (max |x|, the gradient shared by tied maxima); without axes, over all elements.
/// d/dx = sign(x) |x|^(p-1) / norm^(p-1), taken as 0 where the norm is 0.
Tensor norm(const Tensor& x, double p = 2);
Tensor norm(const Tensor& x, double p, const Axes& axes, bool keepdim = false);
/// Running sums along an axis (accumulated in float64 for float32, like PyTorch's CPU kernel);
/// d/dx = the running sums of g from the end.
Tensor cumsum(const Tensor& x, std::int64_t axis);
/// log(sum(exp(x))) along axes, computed stably; d/dx = softmax(x). All -inf gives -inf
/// with a zero gradient.
Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim = false);

// --- shape (ops_shape.cpp) -------------------------------------------------------------------------
/// Same elements, new shape (one entry may be -1); shares storage. d: reshape back.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x);                         ///< reshape to [numel]
Tensor unsqueeze(const Tensor& x, std::int64_t axis);    ///< insert a size-1 axis
Tensor squeeze(const Tensor& x, std::int64_t axis);      ///< remove a size-1 axis (another size stays, as in PyTorch)
/// Reorders axes: out.shape[i] = x.shape[dims[i]]. d: the inverse permutation.
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1);
/// Broadcasts x to `shape` (NumPy rules). d: sum_to(grad, x.shape)
Tensor expand(const Tensor& x, const Shape& shape);
/// Sums x down to `shape`, undoing a broadcast. d: expand(grad, x.shape)
Tensor sum_to(const Tensor& x, const Shape& shape);
/// Elements start, start+step, ... < stop along an axis (negative start/stop count from
/// the end; clamped like Python). d: embed_slice
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1);
/// Zeros of `shape` with x written into slice(axis, start, stop, step): slice's adjoint. d: slice
Tensor embed_slice(const Tensor& x, const Shape& shape, std::int64_t axis, std::int64_t start,
                   std::int64_t stop, std::int64_t step = 1);
/// Joins tensors along an existing axis. d: slices of grad
Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis);
/// Joins tensors along a new axis.
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis);
/// Splits into pieces of the given sizes along an axis: one node with an output per piece;
/// d: concat of the pieces' gradients.
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis);
/// The slices of an axis, that axis removed: x[.., t, ..] for every t (one node for all).
std::vector<Tensor> unbind(const Tensor& x, std::int64_t axis);
/// unbind(permute(x, dims), 0): the slices of x's axis dims[0], each with the remaining axes in
/// the order of dims (attention's heads: x [B, T, 3, heads, D], dims {2, 0, 3, 1, 4} -> q, k, v
/// [B, heads, T, D]). One node; d: each piece's gradient written straight into x's layout.
std::vector<Tensor> unbind_permuted(const Tensor& x, const std::vector<std::int64_t>& dims);
/// Splits into `chunks` equal pieces along an axis.
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t axis);
/// Pads one axis with `before` and `after` elements of `value`; a negative amount crops that
/// many elements instead (torch.nn.functional.pad). d: slice
Tensor pad(const Tensor& x, std::int64_t axis, std::int64_t before, std::int64_t after, double value = 0);

// --- indexing (ops_index.cpp) -----------------------------------------------------------------------
/// Picks entries of x along an axis by a 1-D i64 index. d: index_add (scatter-add)
Tensor index_select(const Tensor& x, std::int64_t axis, const Tensor& index);
/// Zeros of `shape` plus src's entries added at positions `index` along an axis:
/// index_select's adjoint. d/dsrc: index_select
Tensor index_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& src);
/// out[..i..] = x[.. index[..i..] (at axis) ..], index of x's rank (torch.gather). d: scatter_add
Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index);
/// Zeros of `shape` with src added at the positions gather would read: gather's adjoint.
Tensor scatter_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& src);
/// Sliding windows along an axis: that axis becomes the window count and a new last axis of
/// `size` holds each window, x[w*step + j*dilation] (Tensor.unfold, plus dilation). d: fold
Tensor unfold(const Tensor& x, std::int64_t axis, std::int64_t size, std::int64_t step = 1, std::int64_t dilation = 1);
/// Adds windows back into a tensor of `shape`: unfold's adjoint. d: unfold
Tensor fold(const Tensor& windows, const Shape& shape, std::int64_t axis, std::int64_t size,
            std::int64_t step = 1, std::int64_t dilation = 1);

/// Sorts along an axis, stably (ties keep their order; NaN sorts above +inf, as in PyTorch).
/// values = gather(x, axis, indices): the gradient goes back to where each value came from.
ValuesIndices sort(const Tensor& x, std::int64_t axis = -1, bool descending = false);
/// The k largest (or smallest) entries along an axis, in sorted order (torch.topk; among ties
/// the first positions win). d: scatter to the picked positions.
ValuesIndices topk(const Tensor& x, std::int64_t k, std::int64_t axis = -1, bool largest = true);
/// index [..] (i64, each in [0, num_classes)) -> i64 [.., num_classes] with a 1 at the index;
/// num_classes = -1 takes max(index) + 1 (torch.nn.functional.one_hot).
Tensor one_hot(const Tensor& index, std::int64_t num_classes = -1);

// --- linear algebra (ops_linalg.cpp) ------------------------------------------------------------------
/// op(a) @ op(b) over the last two axes, op = transpose where asked; batch axes broadcast;
/// a 1-D operand is a vector. d/da = g op(b)^T, d/db = op(a)^T g (then transposed back).
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
/// x W^T + b over the last axis of x (weight [out, in], bias [out] or undefined), as one GEMM
/// that accumulates onto the bias. d/dx = g W, d/dW = g^T x, d/db = g summed over rows.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// --- softmax (ops_softmax.cpp): row kernels, fused first-order backward --------------------------
/// exp(x) / sum(exp(x)) along axis, computed as exp(x - max) / sum(exp(x - max)).
/// d/dx = y * (g - sum(g * y)).
Tensor softmax(const Tensor& x, std::int64_t axis);
/// x - logsumexp(x) along axis, computed as (x - max) - log(sum(exp(x - max))).
/// d/dx = g - exp(y) * sum(g).
Tensor log_softmax(const Tensor& x, std::int64_t axis);
/// gather(log_softmax(x, axis), axis, index) for an i64 index of x's shape with size 1 along
/// axis: one log-probability per row (cross-entropy's pick), without forming log_softmax.
/// d/dx = scatter(g at index) - softmax(x) * g.
Tensor log_softmax_gather(const Tensor& x, std::int64_t axis, const Tensor& index);

// --- composites (ops_composite.cpp): no backward of their own ---------------------------------------
Tensor square(const Tensor& x);                          ///< x * x
Tensor minimum(const Tensor& a, const Tensor& b);        ///< -max(-a, -b)
/// sum((a / max(|a|, eps)) (b / max(|b|, eps))) along `axis` (removed) of the broadcast of a and b,
/// |v| = sqrt(sum(v v)) along axis (torch.nn.functional.cosine_similarity of PyTorch 1.13; not
/// 1.12's a.b / max(|a| |b|, eps); but axis defaults to -1, not dim=1); d: through those ops,
/// 0 through a clamped norm, so d/da = b / (|b| eps) where a is a zero vector.
Tensor cosine_similarity(const Tensor& a, const Tensor& b, std::int64_t axis = -1, double eps = 1e-8);
/// x with `value` where mask is nonzero (mask broadcasts to x's shape; torch.masked_fill);
/// d/dx = [mask == 0].
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
/// Reverses the order of elements along each of `axes` (torch.flip). d: flip(g, axes)
Tensor flip(const Tensor& x, const Axes& axes);
/// out[.., i, ..] = x[.., (i - shift) mod n, ..] along `axis` of size n (torch.roll, one axis;
/// any shift); two slices and a concat. d: roll(g, -shift, axis)
Tensor roll(const Tensor& x, std::int64_t shift, std::int64_t axis);

}  // namespace xgrad
