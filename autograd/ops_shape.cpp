// Shape primitives: reshape (a view), permute, expand <-> sum_to, slice <-> embed_slice,
// concat; stack, split, chunk and pad are composed from them.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "xgrad/autograd/op_impl.hpp"
#include "xgrad/core/loops.hpp"

namespace xgrad {

namespace {

std::int64_t product(const Shape& s, std::size_t begin, std::size_t end) {
  std::int64_t n = 1;
  for (std::size_t i = begin; i < end; ++i) n *= s[i];
  return n;
}

/// dst[o, dst_start + k*dst_step, :] = src[o, src_start + k*src_step, :] for k < n, viewing
/// both tensors as [outer, length along `axis`, inner] (equal outer and inner).
void copy_along_axis(const Tensor& src, const Tensor& dst, int axis, std::int64_t n, std::int64_t src_start,
                     std::int64_t src_step, std::int64_t dst_start, std::int64_t dst_step) {
  const std::size_t item = dtype_size(src.dtype());
  const std::int64_t outer = product(src.shape(), 0, axis);
  const std::int64_t inner = product(src.shape(), axis + 1, src.shape().size());
  const std::int64_t src_len = src.shape()[axis], dst_len = dst.shape()[axis];
  const std::size_t block = static_cast<std::size_t>(inner) * item;  // one step's bytes
  const char* s = static_cast<const char*>(src.impl().storage->data()) + src.impl().offset * item + src_start * block;
  char* d = static_cast<char*>(dst.impl().storage->data()) + dst.impl().offset * item + dst_start * block;
  const bool run = src_step == 1 && dst_step == 1;  // the n blocks are one run: one copy per outer index
  const std::size_t src_row = src_len * block, dst_row = dst_len * block;
  const std::size_t src_jump = src_step * block, dst_jump = dst_step * block;
  if (run && (outer == 1 || (src_row == block * n && dst_row == block * n))) {
    // one contiguous range on both sides (a join along the outermost axis: attention's q, k, v
    // gradients, a sequence's steps): split its bytes, not its few outer indices, across the pool
    const std::int64_t bytes = outer * static_cast<std::int64_t>(block * n);
    return detail::parallel_items(bytes, 1, [=](std::int64_t first, std::int64_t last) {
      detail::copy_rows(s + first, 0, d + first, 0, 1, static_cast<std::size_t>(last - first));
    }, detail::kParallelCopyBytes);
  }
  auto copy = [=](std::int64_t first, std::int64_t last) {  // outer indices [first, last)
    const char* from = s + first * src_row;
    char* to = d + first * dst_row;
    if (run) return detail::copy_rows(from, src_row, to, dst_row, last - first, block * n);
    for (std::int64_t o = first; o < last; ++o, from += src_row, to += dst_row)
      detail::copy_rows(from, src_jump, to, dst_jump, n, block);
  };
  // a large copy (a pooling window's slice of a convolution's output) splits across the pool
  detail::parallel_items(outer, n * inner * static_cast<std::int64_t>(item), copy, detail::kParallelCopyBytes);
}

/// Zeroes the steps of dst along `axis` outside [start, start + n): what a copy of n steps to
/// `start` leaves unwritten.
void zero_outside(const Tensor& dst, int axis, std::int64_t start, std::int64_t n) {
  const std::size_t item = dtype_size(dst.dtype());
  const std::int64_t outer = product(dst.shape(), 0, axis);
  const std::int64_t inner = product(dst.shape(), axis + 1, dst.shape().size());
  const std::int64_t len = dst.shape()[axis];
  char* d = static_cast<char*>(dst.impl().storage->data()) + dst.impl().offset * item;
  const auto bytes = [&](std::int64_t steps) { return static_cast<std::size_t>(steps * inner) * item; };
  for (std::int64_t o = 0; o < outer; ++o) {
    char* row = d + bytes(o * len);
    std::memset(row, 0, bytes(start));
    std::memset(row + bytes(start + n), 0, bytes(len - start - n));
  }
}

/// Python's slice clamping for a positive step: the normalised start and the count.
std::pair<std::int64_t, std::int64_t> slice_range(std::int64_t len, std::int64_t start, std::int64_t stop,
                                                  std::int64_t step) {
  auto clamp = [len](std::int64_t i) { return std::clamp(i < 0 ? i + len : i, std::int64_t{0}, len); };
  std::int64_t b = clamp(start), e = clamp(stop);
  std::int64_t n = e > b ? (e - b - 1) / step + 1 : 0;  // ceil((e - b) / step), without overflow for a huge step
  return {b, n};
}

}  // namespace

// --- reshape ---------------------------------------------------------------------------------------

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape out = shape;
  std::int64_t known = 1;  // the product of the sizes other than -1
  bool zero = false, overflow = false;
  int infer = -1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) fail("reshape: more than one -1 in {} (input shape {})", shape, x.shape());
      infer = static_cast<int>(i);
    } else if (out[i] < 0) {
      fail("reshape: negative dimension in {} (input shape {})", shape, x.shape());
    } else {
      zero = zero || out[i] == 0;
      overflow = overflow || __builtin_mul_overflow(known, out[i], &known);
    }
  }
  // A product past int64 is no tensor's element count: it used to wrap around to one that
  // matched and hand out a view larger than the storage.
  if (zero) known = 0;
  else if (overflow)
    fail("reshape: the element count of shape {} overflows int64 (input shape {})", shape, x.shape());
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      fail("reshape: cannot reshape {} ({} elements) into {}", x.shape(), x.numel(), shape);
    out[infer] = x.numel() / known;
  }
  if (checked_numel(out, "reshape") != x.numel())
    fail("reshape: cannot reshape {} ({} elements) into {}", x.shape(), x.numel(), shape);
  auto& i = x.impl();
  Tensor y(std::allocate_shared<TensorImpl>(detail::SmallAllocator<TensorImpl>(), i.storage, i.offset, out, i.dtype));  // a view: shares storage
  return record("reshape", y, {x}, [sx = x.shape()](const Tensor& g) -> Grads { return {reshape(g, sx)}; });
}

Tensor flatten(const Tensor& x) { return reshape(x, {-1}); }

Tensor unsqueeze(const Tensor& x, std::int64_t axis) {
  Shape s = x.shape();
  int a = normalize_axis(axis, s.size() + 1, "unsqueeze", s);
  s.insert(s.begin() + a, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, std::int64_t axis) {
  Shape s = x.shape();
  int a = normalize_axis(axis, s.size(), "squeeze", s);
  if (s[a] != 1) return x;  // PyTorch: an axis whose size is not 1 stays
  s.erase(s.begin() + a);
  return reshape(x, s);
}

// --- permute ---------------------------------------------------------------------------------------

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  const auto& s = x.shape();
  if (dims.size() != s.size()) fail("permute: {} axes given for shape {}", dims.size(), s);
  std::vector<std::size_t> perm;
  for (auto d : dims) perm.push_back(static_cast<std::size_t>(normalize_axis(d, s.size(), "permute", s)));
  std::vector<std::size_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != i) fail("permute: [{}] is not a permutation of the axes of {}", fmt::join(dims, ", "), s);
  Shape out;
  for (auto p : perm) out.push_back(s[p]);
  // Walk the output in order, reading x through its strides permuted (one strided run per
  // output row; contiguous when the last axis stays last, as when splitting attention heads)
  Shape x_strides = detail::broadcast_strides(s, s.size()), strides;
  for (auto p : perm) strides.push_back(s[p] == 1 ? 0 : x_strides[p]);
  Tensor y = empty(out, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    detail::for_each_run(out, strides, strides,
                         [&](std::int64_t o, std::int64_t i, std::int64_t, std::int64_t n, std::int64_t step, std::int64_t) {
                           if (step == 1) std::copy_n(px + i, n, py + o);  // the last axis stays last
                           else
                             for (std::int64_t j = 0; j < n; ++j) py[o + j] = px[i + j * step];
                         });
  });
  std::vector<std::int64_t> inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<std::int64_t>(i);
  return record("permute", y, {x}, [inverse](const Tensor& g) -> Grads { return {permute(g, inverse)}; });
}

Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1) {
  std::vector<std::int64_t> dims(x.shape().size());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_axis(axis0, dims.size(), "transpose", x.shape())],
            dims[normalize_axis(axis1, dims.size(), "transpose", x.shape())]);
  return permute(x, dims);
}

// --- expand <-> sum_to -------------------------------------------------------------------------------

Tensor expand(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (shape.size() < x.shape().size() || broadcast_shapes(x.shape(), shape, "expand") != shape)
    fail("expand: cannot expand {} to {}", x.shape(), shape);
  checked_numel(shape, "expand");
  Tensor y = empty(shape, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::broadcast_binary(shape, x.data<T>(), x.shape(), x.data<T>(), x.shape(), y.data<T>(), [](T v, T) { return v; });
  });
  return record("expand", y, {x}, [sx = x.shape()](const Tensor& g) -> Grads { return {sum_to(g, sx)}; });
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const auto& s = x.shape();
  if (shape.size() > s.size() || broadcast_shapes(shape, s, "sum_to") != s)
    fail("sum_to: cannot sum {} down to {}", s, shape);
  const std::size_t lead = s.size() - shape.size();
  std::vector<std::int64_t> axes;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && s[i] != 1)) axes.push_back(static_cast<std::int64_t>(i));
  return reshape(sum(x, Axes(axes), true), shape);
}

// --- slice <-> embed_slice -------------------------------------------------------------------------------

Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t stop, std::int64_t step) {
  int a = normalize_axis(axis, x.shape().size(), "slice", x.shape());
  if (step <= 0) fail("slice: step must be positive, got {} (shape {})", step, x.shape());
  const auto [b, n] = slice_range(x.shape()[a], start, stop, step);
  Shape out = x.shape();
  out[a] = n;
  Tensor y = empty(out, x.dtype());
  copy_along_axis(x, y, a, n, b, step, 0, 1);
  return record("slice", y, {x}, [sx = x.shape(), a, b = b, n = n, step](const Tensor& g) -> Grads {
    return {embed_slice(g, sx, a, b, b + n * step, step)};
  });
}

Tensor embed_slice(const Tensor& x, const Shape& shape, std::int64_t axis, std::int64_t start, std::int64_t stop,
                   std::int64_t step) {
  if (shape.size() != x.shape().size()) fail("embed_slice: cannot embed {} into {}", x.shape(), shape);
  int a = normalize_axis(axis, shape.size(), "embed_slice", shape);
  if (step <= 0) fail("embed_slice: step must be positive, got {}", step);
  const auto [b, n] = slice_range(shape[a], start, stop, step);
  Shape expected = shape;
  expected[a] = n;
  if (expected != x.shape())
    fail("embed_slice: a slice of {} along axis {} has shape {}, got {}", shape, axis, expected, x.shape());
  // with step 1 the copy covers one run of steps: zero only what lies outside it
  Tensor y = step == 1 ? empty(shape, x.dtype()) : zeros(shape, x.dtype());
  if (step == 1) zero_outside(y, a, b, n);
  copy_along_axis(x, y, a, n, 0, 1, b, step);
  return record("embed_slice", y, {x}, [a, b = b, n = n, step](const Tensor& g) -> Grads {
    return {slice(g, a, b, b + n * step, step)};
  });
}

// --- concat, stack, split, chunk, pad ----------------------------------------------------------------------

Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) fail("concat: expects at least one tensor");
  const Shape& s0 = xs[0].shape();
  int a = normalize_axis(axis, s0.size(), "concat", s0);
  Shape out = s0;
  out[a] = 0;
  for (const auto& x : xs) {
    Shape probe = x.shape();
    if (probe.size() == s0.size()) probe[a] = s0[a];
    if (probe != s0 || x.dtype() != xs[0].dtype())
      fail("concat: tensors must match except along axis {}: {} {} and {} {}", axis, s0, dtype_name(xs[0].dtype()),
           x.shape(), dtype_name(x.dtype()));
    out[a] = checked_add(out[a], x.shape()[a], "concat");
  }
  Tensor y = empty(out, xs[0].dtype());
  std::vector<std::int64_t> offsets;
  offsets.reserve(xs.size());
  std::int64_t offset = 0;
  for (const auto& x : xs) {
    copy_along_axis(x, y, a, x.shape()[a], 0, 1, offset, 1);
    offsets.push_back(offset);
    offset += x.shape()[a];
  }
  return record("concat", y, std::span<const Tensor>(xs), [a, offsets = std::move(offsets), out](const Tensor& g) -> Grads {
    Grads grads;
    grads.reserve(offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      std::int64_t end = i + 1 < offsets.size() ? offsets[i + 1] : out[a];
      grads.push_back(slice(g, a, offsets[i], end));
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) fail("stack: expects at least one tensor");
  for (const auto& x : xs)
    if (x.shape() != xs[0].shape()) fail("stack: tensors must have equal shapes: {} and {}", xs[0].shape(), x.shape());
  int a = normalize_axis(axis, xs[0].shape().size() + 1, "stack", xs[0].shape());
  std::vector<Tensor> parts;
  for (const auto& x : xs) parts.push_back(unsqueeze(x, a));
  return concat(parts, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  int a = normalize_axis(axis, x.shape().size(), "split", x.shape());
  std::int64_t total = 0;
  for (auto n : sizes) {
    if (n < 0) fail("split: negative size {} (shape {})", n, x.shape());
    total = checked_add(total, n, "split");
  }
  if (total != x.shape()[a])
    fail("split: sizes [{}] add up to {}, but axis {} of {} has {}", fmt::join(sizes, ", "), total, axis, x.shape(),
         x.shape()[a]);
  // One node with a piece per output: its backward joins the pieces' gradients once, so
  // splitting a sequence into T steps costs O(T), not T full-size gradients.
  // Where the axis is the outermost one that is not 1, each piece is a contiguous range of x's
  // buffer: a view at an offset (no copy; it shares x's storage and its version counter).
  const bool ranges = product(x.shape(), 0, a) == 1;
  const std::int64_t inner = product(x.shape(), a + 1, x.shape().size());
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  std::int64_t offset = 0;
  for (auto n : sizes) {
    Shape s = x.shape();
    s[a] = n;
    Tensor piece = ranges ? Tensor(std::allocate_shared<TensorImpl>(detail::SmallAllocator<TensorImpl>(), x.impl().storage, x.impl().offset + offset * inner, s,
                                                                x.dtype()))
                          : empty(s, x.dtype());
    if (!ranges) copy_along_axis(x, piece, a, n, offset, 1, 0, 1);
    pieces.push_back(piece);
    offset += n;
  }
  std::vector<Shape> piece_shapes;
  piece_shapes.reserve(pieces.size());
  for (const auto& p : pieces) piece_shapes.push_back(p.shape());
  return autograd::record_outputs("split", std::move(pieces), std::span<const Tensor>(&x, 1),
                                  [a, piece_shapes = std::move(piece_shapes),
                                   dtype = x.dtype()](const std::vector<Tensor>& grads) -> Grads {
                                    std::vector<Tensor> parts;
                                    parts.reserve(grads.size());
                                    for (std::size_t i = 0; i < grads.size(); ++i)
                                      parts.push_back(grads[i].defined() ? grads[i] : zeros(piece_shapes[i], dtype));
                                    return {concat(parts, a)};
                                  });
}

std::vector<Tensor> unbind(const Tensor& x, std::int64_t axis) {
  int a = normalize_axis(axis, x.shape().size(), "unbind", x.shape());
  std::vector<Tensor> pieces = split(x, std::vector<std::int64_t>(x.shape()[a], 1), a);
  for (auto& p : pieces) p = squeeze(p, a);
  return pieces;
}

std::vector<Tensor> unbind_permuted(const Tensor& x, const std::vector<std::int64_t>& dims) {
  if (x.dim() == 0) fail("unbind_permuted: expects a tensor of rank >= 1, got shape {}", x.shape());
  Tensor joined;  // permute(x, dims) (which checks dims), its slices along axis 0 views of it
  {
    autograd::NoGradGuard no_grad;
    joined = permute(x, dims);
  }
  const Shape piece(joined.shape().begin() + 1, joined.shape().end());
  const std::int64_t size = numel(piece);
  std::vector<Tensor> pieces;
  for (std::int64_t i = 0; i < joined.size(0); ++i)
    pieces.emplace_back(std::allocate_shared<TensorImpl>(detail::SmallAllocator<TensorImpl>(), joined.impl().storage,
                                                         joined.impl().offset + i * size, piece, x.dtype()));
  // dims as axes of x (permute checked them), x's strides in a piece's axis order, the stride of
  // the unbound axis, and the permutation back
  const std::size_t rank = x.shape().size();
  std::vector<std::size_t> perm;
  for (auto d : dims) perm.push_back(static_cast<std::size_t>(normalize_axis(d, rank, "unbind_permuted", x.shape())));
  const Shape x_strides = detail::broadcast_strides(x.shape(), rank);
  Shape strides;
  for (std::size_t k = 1; k < rank; ++k) strides.push_back(x_strides[perm[k]]);
  std::vector<std::int64_t> inverse(rank);
  for (std::size_t k = 0; k < rank; ++k) inverse[perm[k]] = static_cast<std::int64_t>(k);
  return autograd::record_outputs(
      "unbind_permuted", std::move(pieces), std::span<const Tensor>(&x, 1),
      [shape = x.shape(), piece, strides, slab = x_strides[perm[0]], inverse = std::move(inverse),
       dtype = x.dtype()](const std::vector<Tensor>& grads) -> Grads {
        if (autograd::grad_enabled()) {  // create_graph: the same values, from differentiable ops
          std::vector<Tensor> parts;
          for (const Tensor& g : grads) parts.push_back(g.defined() ? g : zeros(piece, dtype));
          return {permute(stack(parts, 0), inverse)};
        }
        // Each piece's gradient goes straight to its place in x's layout: one copy, where
        // unbind then permute would join the pieces first and permute the join.
        Tensor gx = empty(shape, dtype);
        dispatch(dtype, [&](auto tag) {
          using T = decltype(tag);
          for (std::size_t i = 0; i < grads.size(); ++i) {
            const T* g = grads[i].defined() ? grads[i].data<T>() : nullptr;  // none: zeros
            T* base = gx.data<T>() + static_cast<std::int64_t>(i) * slab;
            detail::for_each_run(piece, strides, strides,
                                 [&](std::int64_t o, std::int64_t at, std::int64_t, std::int64_t n, std::int64_t step, std::int64_t) {
                                   T* to = base + at;
                                   if (!g) {
                                     for (std::int64_t j = 0; j < n; ++j) to[j * step] = T(0);
                                   } else if (step == 1) {  // the last axis stays last
                                     std::copy_n(g + o, n, to);
                                   } else {
                                     for (std::int64_t j = 0; j < n; ++j) to[j * step] = g[o + j];
                                   }
                                 });
          }
        });
        return {gx};
      });
}

std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t axis) {
  int a = normalize_axis(axis, x.shape().size(), "chunk", x.shape());
  if (chunks <= 0) fail("chunk: chunks must be positive, got {}", chunks);
  const std::int64_t len = x.shape()[a], size = ceil_div(len, chunks);  // (len + chunks - 1) overflows
  std::vector<std::int64_t> sizes;
  sizes.reserve(static_cast<std::size_t>(std::min(chunks, std::max<std::int64_t>(len, 1))));
  for (std::int64_t left = len; left > 0; left -= size) sizes.push_back(std::min(size, left));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, a);
}

Tensor pad(const Tensor& x, std::int64_t axis, std::int64_t before, std::int64_t after, double value) {
  int a = normalize_axis(axis, x.shape().size(), "pad", x.shape());
  if (before < 0 || after < 0) {  // crop first (torch.nn.functional.pad), then pad what is positive
    const std::int64_t len = x.shape()[a], cut_front = before < 0 ? -before : 0, cut_back = after < 0 ? -after : 0;
    if (cut_front > len || cut_back > len - cut_front)
      fail("pad: padding ({}, {}) of axis {} of shape {} crops more than the axis holds", before, after, axis,
           x.shape());
    return pad(slice(x, a, cut_front, len - cut_back), a, std::max<std::int64_t>(before, 0),
               std::max<std::int64_t>(after, 0), value);
  }
  Shape out = x.shape();
  if (__builtin_add_overflow(before, after, &out[a]) || __builtin_add_overflow(out[a], x.shape()[a], &out[a]))
    fail("pad: padding ({}, {}) of axis {} of shape {} is too large", before, after, axis, x.shape());
  Tensor y = embed_slice(x, out, a, before, before + x.shape()[a]);
  if (value == 0) return y;
  Tensor fill = full(out, value, x.dtype());  // value outside, 0 where x goes (a constant)
  copy_along_axis(zeros_like(x), fill, a, x.shape()[a], 0, 1, before, 1);
  return y + fill;
}

}  // namespace xgrad
