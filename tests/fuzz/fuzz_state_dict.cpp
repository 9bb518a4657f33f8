// libFuzzer target for loading state: the bytes are read as a safetensors file and loaded into a
// small model (2-layer bidirectional LSTM + Linear) and into an Adam optimizer over it. A load
// either fails with an xgrad::Error and leaves the model (or optimizer) exactly as it was, or
// succeeds and the model then holds exactly the loaded values. Anything else aborts: a crash,
// a sanitizer report, another exception, a half-applied load.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz_model.hpp"

using namespace xgrad;
using xgrad::fuzz::Model;

namespace {

/// Every entry's name, dtype, shape and bytes, for exact before/after comparisons.
std::string fingerprint(const NamedTensors& entries) {
  std::string out;
  for (const auto& [name, t] : entries) {
    out += name + '|' + std::string(dtype_name(t.dtype())) + '|' + to_string(t.shape()) + '|';
    const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * dtype_size(t.dtype());
    out.append(p, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  }
  return out;
}

Model& model() {
  static Model m;
  return m;
}

optim::Adam& adam() {
  static optim::Adam opt = fuzz::stepped_adam(model());
  return opt;
}

const nn::StateDict& initial_model_state() {
  static const nn::StateDict state = [] {
    nn::StateDict copy;
    for (const auto& [name, t] : model().state_dict()) copy.emplace_back(name, t.detach().clone());
    return copy;
  }();
  return state;
}

const NamedTensors& initial_optimizer_state() {
  static const NamedTensors state = [] {
    NamedTensors copy;
    for (const auto& [name, t] : adam().state_dict()) copy.emplace_back(name, t.detach().clone());
    return copy;
  }();
  return state;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  NamedTensors loaded;
  try {
    loaded = parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const Error&) {
    return 0;
  }
  Model& m = model();
  initial_model_state();
  initial_optimizer_state();
  const std::string model_before = fingerprint(m.state_dict());
  try {
    m.load_state_dict(loaded);
    // Loaded: every entry the model has now is the file's (converted to the model's dtype).
    for (const auto& [name, t] : m.state_dict()) {
      bool found = false;
      for (const auto& [file_name, v] : loaded)
        if (file_name == name) {
          found = true;
          if (v.shape() != t.shape()) std::abort();
          const auto a = v.to(f64).to_vector<double>(), b = t.to(f64).to_vector<double>();
          for (std::size_t i = 0; i < a.size(); ++i)
            if (!(static_cast<float>(a[i]) == static_cast<float>(b[i]) || (a[i] != a[i] && b[i] != b[i]))) std::abort();
        }
      if (!found) std::abort();  // a strict load must name every key
    }
    m.load_state_dict(initial_model_state());  // every input starts from the same model
  } catch (const Error&) {
    if (fingerprint(m.state_dict()) != model_before) std::abort();  // a failed load changed the model
  }
  optim::Adam& opt = adam();
  const std::string optimizer_before = fingerprint(opt.state_dict());
  try {
    opt.load_state_dict(loaded);
    opt.load_state_dict(initial_optimizer_state());
  } catch (const Error&) {
    if (fingerprint(opt.state_dict()) != optimizer_before) std::abort();
  }
  return 0;
}
