// libFuzzer target for the safetensors loader: parse_safetensors on arbitrary bytes.
// An xgrad::Error is the expected way to refuse a file; any other exception, a crash or a
// sanitizer report is a finding. A file that parses must serialize and parse back identically.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "xgrad/core/safetensors.hpp"

namespace {

std::string raw_bytes(const xgrad::Tensor& t) {
  const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * xgrad::dtype_size(t.dtype());
  return std::string(p, static_cast<std::size_t>(t.numel()) * xgrad::dtype_size(t.dtype()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xgrad::NamedTensors tensors;
  try {
    tensors = xgrad::parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const xgrad::Error&) {
    return 0;  // rejected cleanly
  }
  // Accepted: what we would write for these tensors must read back as the same tensors.
  const xgrad::NamedTensors back = xgrad::parse_safetensors(xgrad::serialize_safetensors(tensors), "round trip");
  if (back.size() != tensors.size()) std::abort();
  for (std::size_t i = 0; i < back.size(); ++i)
    if (back[i].first != tensors[i].first || back[i].second.dtype() != tensors[i].second.dtype() ||
        back[i].second.shape() != tensors[i].second.shape() || raw_bytes(back[i].second) != raw_bytes(tensors[i].second))
      std::abort();
  return 0;
}
