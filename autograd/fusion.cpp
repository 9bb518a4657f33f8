// Fused elementwise backward (docs/fusion.md): consecutive elementwise ops recorded on one thread
// share one FusedNode, whose backward walks all of them in one pass over tiles of elements.
#include "xgrad/autograd/fusion.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/core/kernel.hpp"
#include "xgrad/core/loops.hpp"

namespace xgrad::autograd {

namespace {
bool fusion_default() {
  const char* setting = std::getenv("XGRAD_FUSION");
  return !(setting && std::string_view(setting) == "0");
}
thread_local bool t_fusion = fusion_default();
}  // namespace

bool fusion_enabled() { return t_fusion; }
void set_fusion_enabled(bool enabled) { t_fusion = enabled; }

namespace detail {

namespace {

/// A value the node's instructions read: >= 0 the output of instruction `slot` (which is the
/// node's output number), < 0 operand -(slot + 1), a tensor from outside the node.
using Slot = std::int32_t;
constexpr Slot kNoSlot = std::numeric_limits<Slot>::min();
constexpr bool is_operand(Slot s) { return s < 0; }
constexpr std::size_t operand_index(Slot s) { return static_cast<std::size_t>(-(s + 1)); }

/// into[e] (+)= the derivative of op for operand a (or b) at element e: a loop of its own with
/// restrict pointers, so that the compiler vectorises it.
template <ElementOp op, bool operand_b, bool accumulate, class T>
void derivative_loop(T* __restrict into, const T* __restrict g, const T* __restrict a, const T* __restrict b,
                     const T* __restrict y, std::int64_t len) {
  for (std::int64_t e = 0; e < len; ++e) {
    T c;
    if constexpr (operand_b) c = grad_b<op, T>(g[e], a[e], b[e], y[e]);
    else c = grad_a<op, T>(g[e], a[e], b[e], y[e]);
    if constexpr (accumulate) into[e] += c;
    else into[e] = c;
  }
}

/// The node of a chain of elementwise ops of one shape and dtype. Its outputs are the ops'
/// results, its inputs the tensors from outside that they read. It saves what the ops' own
/// nodes would have saved, and its backward applies their derivative formulas (formulas.hpp)
/// in reverse order, tile by tile, so that the gradients between the ops never leave the cache.
///
/// Each read of an outside tensor that needs a gradient is an input edge of its own, and the
/// edges run from the last op's reads to the first's: the engine then sums the contributions
/// to that tensor in the order, and with the roundings, of one node per op.
class FusedNode final : public Node {
 public:
  static constexpr std::size_t kMaxInstructions = 64, kMaxOperands = 16, kMaxReads = 32;
  // A backward sweep splits its tiles across the pool in parts of at least this many element
  // derivatives (a derivative costs several times an add: a smaller unit than a plain op's).
  static constexpr std::int64_t kParallelSweep = std::int64_t{1} << 13;

  FusedNode(ElementOp first, Shape shape, Dtype dtype)
      : Node(op_name(first), 0, 0), shape_(std::move(shape)), dtype_(dtype) {
    instructions_.reserve(16);
    operands_.reserve(8);
    saved_.reserve(8);
  }

  bool accepts(const Shape& shape, Dtype dtype) const {
    return !released() && shape == shape_ && dtype == dtype_ && instructions_.size() < kMaxInstructions &&
           operands_.size() + 2 <= kMaxOperands && next().size() + 2 <= kMaxReads;
  }

  /// Drops what only growing needs (the operands' identities, which keep their tensors' control
  /// blocks allocated) once no op can join any more.
  void seal() {
    for (auto& o : operands_) o.identity.reset();
  }

  /// Makes out = op(inputs) this node's next output.
  void append(ElementOp op, const Tensor& out, std::span<const Tensor> inputs) {
    Instruction in{op, slot_of(inputs[0]), is_binary(op) ? slot_of(inputs[1]) : kNoSlot};
    in.reads_before = static_cast<std::uint16_t>(next().size());
    for (Slot s : {in.a, in.b})
      if (s != kNoSlot && !is_operand(s)) instructions_[s].read_inside = true;
    const Reads r = reads(op);
    if (r.a) keep(in.a, inputs[0], op, "input");
    if (r.b) keep(in.b, inputs[1], op, "input");
    // This op's reads go before every earlier op's: b first, so that a ends up in front.
    if (in.b != kNoSlot && is_operand(in.b) && inputs[1].requires_grad()) {
      in.b_edge = true;
      add_edge_front(gradient_edge(inputs[1]));
    }
    if (is_operand(in.a) && inputs[0].requires_grad()) {
      in.a_edge = true;
      add_edge_front(gradient_edge(inputs[0]));
    }
    const auto y = static_cast<Slot>(instructions_.size());
    instructions_.push_back(in);
    add_output();
    TensorImpl& impl = out.impl();
    impl.grad_fn = shared_from_this();
    impl.output_nr = static_cast<std::uint32_t>(y);
    impl.requires_grad = true;
    if (r.y) keep(y, out, op, "output");
  }

  Grads apply(const std::vector<Tensor>& output_grads) override {
    check_versions();
    if (grad_enabled()) return tensor_sweep(output_grads).reads;  // create_graph
    return xgrad::detail::dispatch_floating(dtype_, name(), [&](auto tag) {
      return element_sweep<decltype(tag)>(output_grads);
    });
  }

  Tensor output_gradient(const std::vector<Tensor>& output_grads, std::uint32_t k) override {
    const bool read_inside = std::any_of(instructions_.begin(), instructions_.end(), [&](const Instruction& in) {
      return in.a == static_cast<Slot>(k) || in.b == static_cast<Slot>(k);
    });
    if (!read_inside) return output_grads[k];
    if (released()) fail_released();
    check_versions();
    return tensor_sweep(output_grads).outputs[k];
  }

  void release() override {
    operands_.clear();
    saved_.clear();
    Node::release();
  }
  const char* output_name(std::uint32_t k) const override { return op_name(instructions_[k].op); }
  const Shape& output_shape(std::uint32_t) const override { return shape_; }
  Dtype output_dtype(std::uint32_t) const override { return dtype_; }

 private:
  struct Instruction {
    ElementOp op;
    Slot a, b;
    bool a_edge = false, b_edge = false;  // whether the read of operand a (b) has an input edge
    bool read_inside = false;             // whether a later instruction reads this one's output
    std::uint16_t reads_before = 0;       // input edges of the instructions before this one
  };
  struct Operand {
    std::weak_ptr<TensorImpl> identity;  // finds a second read of the tensor (weak: no cycle);
                                         // dropped once the node is sealed
    Shape shape;                         // broadcasts into the node's shape
    Tensor value;                        // held only where a derivative reads it
    const Storage* storage = nullptr;    // value's storage then (set_data gives it another)
    std::uint32_t version = 0;
    const char* saved_by = nullptr;
  };
  /// An instruction's output that a derivative reads (held as storage: holding the tensor
  /// would make a cycle through its grad_fn, this node).
  struct Saved {
    Slot slot;
    std::shared_ptr<Storage> storage;
    std::int64_t offset;
    std::uint32_t version;
    const char* saved_by;
    const char* what;  // "input" or "output" of saved_by, as the op's own node would say
  };

  Slot slot_of(const Tensor& t) {
    if (t.grad_fn().get() == this) return static_cast<Slot>(t.impl().output_nr);
    const auto& p = t.impl_ptr();
    for (std::size_t j = 0; j < operands_.size(); ++j) {
      const auto& id = operands_[j].identity;
      if (!id.owner_before(p) && !p.owner_before(id)) return -static_cast<Slot>(j) - 1;
    }
    Operand o;
    o.identity = p;
    o.shape = t.shape();
    operands_.push_back(std::move(o));
    return -static_cast<Slot>(operands_.size());
  }

  void keep(Slot s, const Tensor& t, ElementOp op, const char* what) {
    if (is_operand(s)) {
      Operand& o = operands_[operand_index(s)];
      if (o.value.defined()) return;
      o.value = t;
      o.storage = t.impl().storage.get();
      o.version = t.version();
      o.saved_by = op_name(op);
      return;
    }
    if (std::any_of(saved_.begin(), saved_.end(), [&](const Saved& v) { return v.slot == s; })) return;
    const TensorImpl& impl = t.impl();
    saved_.push_back({s, impl.storage, impl.offset, impl.storage->version(), op_name(op), what});
  }

  void check_versions() const {
    for (const auto& v : saved_)
      if (v.storage->version() != v.version)
        fail_modified(v.what, shape_, dtype_, v.version, v.storage->version(), v.saved_by);
    for (const auto& o : operands_)
      if (o.value.defined()) check_saved_input(o.value.impl(), o.storage, o.version, o.saved_by);
  }

  /// The value of a slot that a derivative reads, as a tensor; under create_graph an
  /// instruction's output stays tied to this node, so that its use is differentiated again.
  Tensor value(Slot s) {
    if (is_operand(s)) return operands_[operand_index(s)].value;
    const auto v = std::find_if(saved_.begin(), saved_.end(), [&](const Saved& x) { return x.slot == s; });
    auto impl = std::allocate_shared<TensorImpl>(xgrad::detail::SmallAllocator<TensorImpl>(), v->storage, v->offset,
                                                 shape_, dtype_);
    if (grad_enabled()) {
      impl->grad_fn = shared_from_this();
      impl->output_nr = static_cast<std::uint32_t>(s);
      impl->requires_grad = true;
    }
    return Tensor(std::move(impl));
  }

  const Shape& shape_of(Slot s) const { return is_operand(s) ? operands_[operand_index(s)].shape : shape_; }

  /// The input edges of an instruction's reads of operands a and b (-1: none): the last
  /// instruction's reads come first.
  std::pair<std::int32_t, std::int32_t> read_edges(const Instruction& in) const {
    const auto first = static_cast<std::int32_t>(next().size()) - in.reads_before - in.a_edge - in.b_edge;
    return {in.a_edge ? first : -1, in.b_edge ? first + in.a_edge : -1};
  }

  struct TensorGradients {
    std::vector<Tensor> outputs;  // the whole gradient of each output
    Grads reads;                  // each input edge's
  };
  /// The gradients with the formulas on tensors: the ops' own backward, recorded when grad
  /// mode is on (create_graph), so that it differentiates again.
  TensorGradients tensor_sweep(const std::vector<Tensor>& output_grads) {
    TensorGradients result{output_grads, Grads(next().size())};
    auto& gradients = result.outputs;
    for (std::size_t i = instructions_.size(); i-- > 0;) {
      if (!gradients[i].defined()) continue;
      const Instruction in = instructions_[i];
      const auto [a_edge, b_edge] = read_edges(in);
      const Reads r = reads(in.op);
      const Tensor a = r.a ? value(in.a) : Tensor(), b = r.b ? value(in.b) : Tensor();
      const Tensor y = r.y ? value(static_cast<Slot>(i)) : Tensor();
      const Tensor& g = gradients[i];
      auto add = [&](Slot s, std::int32_t edge, auto contribution) {
        if (edge >= 0) {
          result.reads[edge] = sum_to(contribution(), shape_of(s));
        } else if (!is_operand(s)) {
          Tensor& into = gradients[s];
          into = into.defined() ? into + contribution() : contribution();
        }
      };
      with_op(in.op, [&](auto tag) {
        constexpr ElementOp op = decltype(tag)::value;
        add(in.a, a_edge, [&] { return grad_a<op>(g, a, b, y); });
        if constexpr (is_binary(op)) add(in.b, b_edge, [&] { return grad_b<op>(g, a, b, y); });
      });
    }
    return result;
  }

  /// First-order backward in one pass: per tile of elements, the instructions in reverse order,
  /// each adding its derivative into the gradients of the ops it read (the first contribution
  /// assigned, later ones added, as the engine sums them) or writing it for an input edge.
  template <class T>
  Grads element_sweep(const std::vector<Tensor>& output_grads) {
    const std::size_t ni = instructions_.size(), nr = next().size();
    // Tiles of 256 to 1024 elements: the longest that keep one tile of every instruction within
    // 32 KiB (the L1 cache). A short chain then runs fewer, longer loops (a GRU step at B = H = 32:
    // two tiles of 512 instead of four of 256).
    constexpr std::int64_t kMinTile = 256, kMaxTile = 1024;
    constexpr std::size_t kTileBytes = std::size_t{32} << 10;
    std::int64_t tile_len = kMinTile;
    while (tile_len < kMaxTile && 2 * static_cast<std::size_t>(tile_len) * ni * sizeof(T) <= kTileBytes) tile_len *= 2;
    const std::int64_t n = numel(shape_);
    // Where each slot's values are, for the slots a derivative reads (broadcast operands expanded).
    std::array<const T*, kMaxInstructions + kMaxOperands> values{};
    std::vector<Tensor> expanded;
    for (const auto& v : saved_) values[v.slot] = static_cast<const T*>(v.storage->data()) + v.offset;
    for (std::size_t j = 0; j < operands_.size(); ++j) {
      const Tensor& v = operands_[j].value;
      if (!v.defined()) continue;
      expanded.push_back(v.shape() == shape_ ? v : expand(v.detach(), shape_));
      values[ni + j] = expanded.back().data<T>();
    }
    // Which instructions a gradient reaches (the same in every tile), and the edges' buffers.
    std::array<bool, kMaxInstructions> reached{};
    for (std::size_t i = 0; i < ni; ++i) reached[i] = output_grads[i].defined();
    Grads grads(nr);
    for (std::size_t i = ni; i-- > 0;) {
      if (!reached[i]) continue;
      const Instruction& in = instructions_[i];
      const auto [a_edge, b_edge] = read_edges(in);
      for (auto [s, edge] : {std::pair{in.a, a_edge}, std::pair{in.b, b_edge}}) {
        if (edge >= 0) grads[edge] = empty(shape_, dtype_);
        else if (s != kNoSlot && !is_operand(s)) reached[s] = 1;
      }
    }

    // A tile of each instruction's gradient (its incoming gradient read in place when no op of
    // the node adds to it); the edges' gradients go straight to their buffers. Tiles are
    // independent: a long chain over many elements splits them across the pool.
    static const std::array<T, kMaxTile> zeros{};
    auto sweep = [&](std::int64_t first_tile, std::int64_t last_tile) {
      thread_local std::vector<T> tiles;
      if (tiles.size() < ni * tile_len) tiles.resize(ni * tile_len);
      std::array<bool, kMaxInstructions> has;
      std::array<T*, kMaxInstructions> gradient;
      for (std::int64_t t = first_tile; t < last_tile; ++t) {
        const std::int64_t begin = t * tile_len, len = std::min(tile_len, n - begin);
        auto tile = [&](std::size_t i) { return tiles.data() + i * tile_len; };
        auto at = [&](Slot s) -> const T* {
          if (s == kNoSlot) return zeros.data();
          const T* p = values[is_operand(s) ? ni + operand_index(s) : static_cast<std::size_t>(s)];
          return p ? p + begin : zeros.data();
        };
        for (std::size_t i = 0; i < ni; ++i) {
          has[i] = output_grads[i].defined();
          if (!has[i]) continue;
          T* incoming = output_grads[i].data<T>() + begin;
          if (instructions_[i].read_inside) gradient[i] = std::copy_n(incoming, len, tile(i)) - len;
          else gradient[i] = incoming;  // only read
        }
        for (std::size_t i = ni; i-- > 0;) {
          if (!has[i]) continue;
          const Instruction& in = instructions_[i];
          // Distinct buffers: a slot never feeds itself, values are tensors, tiles are scratch.
          const T *g = gradient[i], *a = at(in.a), *b = at(in.b), *y = at(static_cast<Slot>(i));
          const auto [a_edge, b_edge] = read_edges(in);
          auto add = [&](Slot s, std::int32_t edge, auto operand_b) {
            if (edge < 0 && is_operand(s)) return;  // an outside tensor that needs no gradient
            T* into = edge >= 0 ? grads[edge].data<T>() + begin : tile(static_cast<std::size_t>(s));
            const bool accumulate = edge < 0 && has[s];
            constexpr bool on_b = decltype(operand_b)::value;
            with_op(in.op, [&](auto tag) {
              constexpr ElementOp op = decltype(tag)::value;
              if constexpr (on_b && !is_binary(op)) return;
              else if (accumulate) derivative_loop<op, on_b, true>(into, g, a, b, y, len);
              else derivative_loop<op, on_b, false>(into, g, a, b, y, len);
            });
            if (edge < 0 && !accumulate) {
              has[s] = true;
              gradient[s] = into;
            }
          };
          add(in.a, a_edge, std::false_type{});
          if (is_binary(in.op)) add(in.b, b_edge, std::true_type{});
        }
      }
    };
    const std::int64_t tile_work = tile_len * static_cast<std::int64_t>(ni);  // element derivatives per tile
    xgrad::detail::parallel_items(ceil_div(n, tile_len), tile_work, sweep, kParallelSweep);
    // A broadcast operand's gradient is summed down to its shape read by read, as by its op.
    for (const Instruction& in : instructions_) {
      const auto [a_edge, b_edge] = read_edges(in);
      for (auto [s, edge] : {std::pair{in.a, a_edge}, std::pair{in.b, b_edge}})
        if (edge >= 0 && grads[edge].defined()) grads[edge] = sum_to(grads[edge], shape_of(s));
    }
    return grads;
  }

  Shape shape_;
  Dtype dtype_;
  // In the small-object pool, as a node's edge list is.
  template <class X>
  using List = std::vector<X, xgrad::detail::SmallAllocator<X>>;
  List<Instruction> instructions_;
  List<Operand> operands_;
  List<Saved> saved_;
};

/// The node that the next elementwise op recorded on this thread may join.
thread_local std::weak_ptr<FusedNode> t_open;

}  // namespace

void close_fused_node() {
  if (auto node = t_open.lock()) node->seal();
  t_open.reset();
}

Tensor unary_derivative(ElementOp op, const Tensor& g, const Tensor& v) {
  if (g.shape() != v.shape() || g.dtype() != v.dtype())
    fail("{}: the gradient {} {} does not match the saved value {} {}", op_name(op), dtype_name(g.dtype()), g.shape(),
         dtype_name(v.dtype()), v.shape());
  return xgrad::detail::dispatch_floating(g.dtype(), op_name(op), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = empty(g.shape(), g.dtype());
    const T *pg = g.data<T>(), *pv = v.data<T>();
    T* po = out.data<T>();
    with_op(op, [&](auto op_tag) {
      constexpr ElementOp o = decltype(op_tag)::value;
      if constexpr (!is_binary(o))
        xgrad::detail::parallel_items(g.numel(), 1, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t i = b; i < e; ++i) po[i] = grad_a<o, T>(pg[i], pv[i], pv[i], pv[i]);
        });
    });
    return out;
  });
}

bool record_fused(ElementOp op, const Tensor& out, std::span<const Tensor> inputs) {
  // A large tensor's ops run in parallel, and their nodes cost little next to their arithmetic;
  // below 16 elements a node of its own is cheaper than a chain's setup (a scalar loss's ops).
  if (!grad_enabled() || !t_fusion || anomaly_enabled() || !is_floating(out.dtype()) ||
      out.numel() > xgrad::detail::kParallelElements || out.numel() < 16)
    return false;
  bool any = false;
  for (const auto& t : inputs) {
    if (t.dtype() != out.dtype()) return false;
    any = any || t.requires_grad();
  }
  if (!any) return false;
  // The open node takes the op only while no other node was made on this thread since its last
  // op: every node it reads from is then older, so decreasing sequence numbers stay a
  // topological order, and no node made later can read one of its outputs before it grows.
  std::shared_ptr<FusedNode> node = t_open.lock();
  auto made_later = [&](const Tensor& t) {  // by another thread
    return t.grad_fn() && t.grad_fn()->sequence_nr() > node->sequence_nr();
  };
  if (!node || node->sequence_nr() != newest_node_on_thread() || !node->accepts(out.shape(), out.dtype()) ||
      std::any_of(inputs.begin(), inputs.end(), made_later)) {
    if (node) node->seal();
    node = std::allocate_shared<FusedNode>(xgrad::detail::SmallAllocator<FusedNode>(), op, out.shape(), out.dtype());
    t_open = node;
  }
  node->append(op, out, inputs);
  return true;
}

}  // namespace detail

}  // namespace xgrad::autograd
