// One generic test per property, run on every entry of the op table (op_table.hpp): gradients,
// zero-size inputs, inputs through views and permutations, and PyTorch's values at edge values.
#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "op_table.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Out = std::vector<Tensor>;

/// The floating outputs flattened into one f64 vector: what gradcheck differentiates.
Tensor joined(const Out& outs) {
  std::vector<Tensor> parts;
  for (const Tensor& y : outs)
    if (is_floating(y.dtype())) parts.push_back(flatten(y));
  return parts.size() == 1 ? parts[0] : concat(parts, 0);
}

/// 1, 1.5, 2, 1, ... in y's shape and dtype: the fixture's cotangent.
Tensor cotangent(const Tensor& y) {
  Tensor w = empty(y.shape(), f64);
  double* p = w.data<double>();
  for (std::int64_t k = 0; k < w.numel(); ++k) p[k] = 1 + static_cast<double>(k % 3) * 0.5;
  return w.to(y.dtype());
}

/// sum(out * w) over the outputs that carry a gradient; undefined if none does.
Tensor weighted_loss(const Out& outs) {
  Tensor loss;
  for (const Tensor& y : outs) {
    if (!y.requires_grad()) continue;
    Tensor term = sum(y * cotangent(y));
    loss = loss.defined() ? loss + term : term;
  }
  return loss;
}

/// Gradients of the weighted loss with respect to the inputs that require grad (undefined for
/// the others and where the loss does not depend on an input).
Out gradients_of(const Out& outs, const Inputs& leaves) {
  Out grads(leaves.size());
  const Tensor loss = weighted_loss(outs);
  if (!loss.defined()) return grads;
  std::vector<Tensor> wrt;
  std::vector<std::size_t> at;
  for (std::size_t k = 0; k < leaves.size(); ++k)
    if (leaves[k].requires_grad()) {
      wrt.push_back(leaves[k]);
      at.push_back(k);
    }
  const Out g = autograd::grad({loss}, wrt, {}, false, std::nullopt, /*allow_unused=*/true);
  for (std::size_t i = 0; i < at.size(); ++i) grads[at[i]] = g[i];
  return grads;
}

bool is_mask(const OpEntry& e, std::size_t k) { return std::find(e.masks.begin(), e.masks.end(), k) != e.masks.end(); }

std::string shapes_text(const std::vector<Shape>& shapes) {
  std::string s;
  for (const auto& shape : shapes) s += to_string(shape) + " ";
  return s;
}

/// The function names declared in autograd/ops.hpp.
std::set<std::string> declared_ops() {
  std::ifstream in(std::string(XGRAD_SOURCE_DIR) + "/autograd/ops.hpp");
  REQUIRE(in.good());
  const std::regex declaration(R"(^(?:Tensor|std::vector<Tensor>|ValuesIndices|MaxResult)\s+(\w+)\()");
  std::set<std::string> names;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, declaration)) names.insert(m[1]);
  }
  return names;
}

}  // namespace

TEST_CASE("op table: every op declared in ops.hpp has an entry, and every entry says what it checks") {
  const std::set<std::string> declared = declared_ops();
  CHECK(declared.size() > 60);  // the parse found the header's declarations
  std::set<std::string> covered, names;
  for (const OpEntry& e : op_table()) {
    INFO(e.name);
    CHECK(names.insert(e.name).second);  // names are unique: they key the fixture
    CHECK((declared.count(e.op) == 1 || e.op == "to"));
    CHECK(!e.samples.empty());
    CHECK((!e.zero_size.empty() || !e.no_zero_size.empty()));  // a zero-size sample, or why not
    CHECK((!e.edge.empty() || !e.no_edge.empty()));             // an edge sweep, or why not
    covered.insert(e.op);
  }
  for (const std::string& op : declared) {
    INFO("ops.hpp declares ", op, " but the op table (tests/op_table.cpp) has no entry for it");
    CHECK(covered.count(op) == 1);
  }
  const auto swept = std::count_if(op_table().begin(), op_table().end(), [](const OpEntry& e) { return !e.edge.empty(); });
  MESSAGE(fmt::format("{} entries cover the {} ops of ops.hpp (and to); {} have an edge-value sweep", op_table().size(),
                      declared.size(), swept));
}

TEST_CASE("op table: float64 gradcheck and gradgradcheck on every sample") {
  for (const OpEntry& e : op_table()) {
    for (const auto& shapes : e.samples) {
      INFO(e.name, " on ", shapes_text(shapes));
      const Inputs in = sample_inputs(e, shapes);
      if (!e.differentiable) {
        for (const Tensor& y : e.f(in)) CHECK(!y.requires_grad());
        continue;
      }
      check_gradients([&e](const Inputs& x) { return joined(e.f(x)); }, in);
    }
  }
}

TEST_CASE("op table: zero-size inputs give zero-size results and gradients of the inputs' shapes") {
  for (const OpEntry& e : op_table()) {
    if (e.zero_size.empty()) continue;
    INFO(e.name, " on ", shapes_text(e.zero_size));
    const Inputs in = sample_inputs(e, e.zero_size);
    Out outs;
    REQUIRE_NOTHROW(outs = e.f(in));
    const Out grads = gradients_of(outs, in);
    for (std::size_t k = 0; k < in.size(); ++k) {
      if (!grads[k].defined()) continue;
      CHECK(grads[k].shape() == in[k].shape());
      // an input that is not empty itself (a weight beside an empty batch) gets exact zeros
      for (double v : grads[k].to_vector<double>()) CHECK(v == 0);
    }
  }
}

TEST_CASE("op table: inputs that arrive through views and permutations give the same results") {
  for (const OpEntry& e : op_table()) {
    const auto& shapes = e.samples.front();
    INFO(e.name, " on ", shapes_text(shapes));
    const Inputs leaves = sample_inputs(e, shapes);
    const Out direct = e.f(leaves);
    const Out direct_grads = gradients_of(direct, leaves);
    // (1) each input the second piece of a split (a view at an offset into a larger buffer);
    // (2) each input permuted and permuted back (two copies in a new layout)
    for (int variant = 0; variant < 2; ++variant) {
      INFO((variant == 0 ? "through split" : "through permute"));
      Inputs in;
      for (std::size_t k = 0; k < leaves.size(); ++k) {
        const Tensor& x = leaves[k];
        if (is_mask(e, k) || x.shape().empty()) {
          in.push_back(x);
        } else if (variant == 0) {
          Shape junk_shape = x.shape();
          junk_shape[0] = 2;
          const Tensor joined_input = concat({full(junk_shape, 7.0, f64), x}, 0);
          in.push_back(split(joined_input, {2, x.shape()[0]}, 0)[1]);
        } else {
          std::vector<std::int64_t> reverse(x.shape().size());
          for (std::size_t a = 0; a < reverse.size(); ++a) reverse[a] = static_cast<std::int64_t>(reverse.size() - 1 - a);
          in.push_back(permute(permute(x, reverse), reverse));
        }
      }
      const Out outs = e.f(in);
      REQUIRE(outs.size() == direct.size());
      for (std::size_t i = 0; i < outs.size(); ++i) {
        CHECK(outs[i].shape() == direct[i].shape());
        CHECK(outs[i].to(f64).to_vector<double>() == direct[i].to(f64).to_vector<double>());
      }
      const Out grads = gradients_of(outs, leaves);
      for (std::size_t k = 0; k < leaves.size(); ++k) {
        REQUIRE(grads[k].defined() == direct_grads[k].defined());
        if (grads[k].defined()) CHECK(grads[k].to_vector<double>() == direct_grads[k].to_vector<double>());
      }
    }
  }
}

// --- edge values against PyTorch ---------------------------------------------------------------

namespace {

/// Outputs agree to 4 units in the last place. Gradients chain two or three rounded steps, in
/// another order than PyTorch's, and some cancel (log_softmax's g - e^y sum(g) loses ~40 ulps of
/// its result in float64 on the row [1, 2, 3, 4]): 64. Either side may be the closer: by a float64
/// check, xgrad's blocked sums are in float32 (the softmax family's rows).
constexpr Agreement kOutputs{.ulps = 4}, kGradients{.ulps = 64};

/// Where xgrad deliberately differs from PyTorch 1.13 at edge values (README, "Edge values").
const KnownDifferences& known_differences() {
  static const KnownDifferences known = {
      {"logsumexp.f64.grad0",
       {{28, 29, 30, 31, 40, 41},
        "a row of only -inf: gradient 0 (logsumexp stays -inf whatever they do), PyTorch's exp(-inf + inf) = NaN; "
        "the row [max/4, max/4, 1, -1]: the softmax, 1/2 each, where PyTorch's exp(x - logsumexp) rounds "
        "logsumexp to max/4 and gives 1 each"}},
      {"logsumexp.f32.grad0", {{28, 29, 30, 31, 40, 41}, "as in f64"}},
  };
  return known;
}

}  // namespace

TEST_CASE("op table: at edge values every entry agrees with PyTorch (values and gradients, f64 and f32)") {
  const Fixture fixture("edge_values");
  std::set<std::string> swept;
  for (const OpEntry& e : op_table()) {
    if (e.edge.empty()) continue;
    swept.insert(e.name);
    for (Dtype dtype : {f64, f32}) {
      const std::string tag(dtype_name(dtype)), key = e.name + "." + tag + ".";
      INFO(e.name, " in ", tag, " on the '", e.edge, "' inputs");
      Inputs in;
      for (std::size_t k = 0; fixture.has(fmt::format("input.{}.{}.{}", e.edge, tag, k)); ++k) {
        const Tensor& x = fixture[fmt::format("input.{}.{}.{}", e.edge, tag, k)];
        in.push_back(is_mask(e, k) || !is_floating(x.dtype()) ? x : x.detach().requires_grad_());
      }
      REQUIRE(!in.empty());
      const Out outs = e.f(in);
      for (std::size_t k = 0; k < outs.size(); ++k) {
        INFO("output ", k);
        REQUIRE(fixture.has(key + "out" + std::to_string(k)));
        check_against_pytorch(key + "out" + std::to_string(k), outs[k], fixture[key + "out" + std::to_string(k)],
                              kOutputs, known_differences());
      }
      CHECK(!fixture.has(key + "out" + std::to_string(outs.size())));  // as many outputs as PyTorch
      const Out grads = gradients_of(outs, in);
      for (std::size_t k = 0; k < in.size(); ++k) {
        INFO("gradient of input ", k);
        const std::string gkey = key + "grad" + std::to_string(k);
        if (!fixture.has(gkey)) {  // PyTorch has none: xgrad's is absent or zero
          if (grads[k].defined())
            for (double v : grads[k].to_vector<double>()) CHECK(v == 0);
          continue;
        }
        REQUIRE(grads[k].defined());
        check_against_pytorch(gkey, grads[k], fixture[gkey], kGradients, known_differences());
      }
    }
  }
  // and the fixture holds no entry the table lacks
  for (const auto& [key, t] : fixture.tensors) {
    if (key.rfind("input.", 0) == 0) continue;
    const std::string name = key.substr(0, key.find(".f64.") != std::string::npos ? key.find(".f64.") : key.find(".f32."));
    INFO("the fixture has ", key, " but the table has no entry '", name, "' with an edge sweep");
    CHECK(swept.count(name) == 1);
  }
}
