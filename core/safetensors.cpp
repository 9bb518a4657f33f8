#include "core/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace xgrad {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::ordered_json;  // keeps the header's order: the order tensors were written in

const char* format_name(Dtype d) {
  switch (d) {
    case Dtype::f32: return "F32";
    case Dtype::f64: return "F64";
    case Dtype::i64: return "I64";
  }
  return "?";
}

struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t begin, end;
};

/// Parses and validates the header; data_size is the number of bytes after it.
std::vector<Entry> parse_header(const std::string& text, std::uint64_t data_size, const std::string& source) {
  const std::uint64_t data_start = 8 + text.size();
  json header;
  try {
    // Reject a key given twice in any object, which the JSON parser would silently merge.
    std::vector<std::set<std::string>> open_objects;
    json::parser_callback_t no_duplicates = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) open_objects.emplace_back();
      else if (event == json::parse_event_t::object_end) open_objects.pop_back();
      else if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second)
        fail("safetensors: {}: the header names '{}' twice", source, parsed.get<std::string>());
      return true;
    };
    header = json::parse(text, no_duplicates);
  } catch (const json::exception& e) {
    fail("safetensors: {}: the header (bytes 8 to {}) is not valid JSON: {}", source, data_start, e.what());
  }
  if (!header.is_object()) fail("safetensors: {}: the header at byte 8 is not a JSON object", source);

  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& what) {
      fail("safetensors: {}: tensor '{}' in the header (bytes 8 to {}): {}", source, name, data_start, what);
    };
    if (!info.is_object()) bad("is not an object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) bad("has no dtype");
    const std::string dt = info["dtype"].get<std::string>();
    Entry e{name, Dtype::f32, {}, 0, 0};
    if (dt == "F32") e.dtype = Dtype::f32;
    else if (dt == "F64") e.dtype = Dtype::f64;
    else if (dt == "I64") e.dtype = Dtype::i64;
    else bad(fmt::format("unsupported dtype '{}' (xgrad reads F32, F64, I64)", dt));
    if (!info.contains("shape") || !info["shape"].is_array()) bad("has no shape");
    std::uint64_t count = 1;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) bad(fmt::format("has a shape entry that is not a non-negative integer: {}", d.dump()));
      const auto v = d.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (v != 0 && count > std::numeric_limits<std::uint64_t>::max() / v))
        bad(fmt::format("has a shape {} whose element count overflows", info["shape"].dump()));
      count *= v;
      e.shape.push_back(static_cast<std::int64_t>(v));
    }
    const auto& off = info.contains("data_offsets") ? info["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad("needs data_offsets [begin, end] of non-negative integers");
    e.begin = off[0].get<std::uint64_t>();
    e.end = off[1].get<std::uint64_t>();
    if (e.end < e.begin) bad(fmt::format("has data_offsets [{}, {}] with end before begin", e.begin, e.end));
    if (e.end > data_size)
      bad(fmt::format("has data_offsets [{}, {}] past the end of the data (bytes {} to {} of a {}-byte file)", e.begin,
                      e.end, data_start + e.begin, data_start + e.end, data_start + data_size));
    const std::uint64_t item = dtype_size(e.dtype);
    if (count > std::numeric_limits<std::uint64_t>::max() / item || count * item != e.end - e.begin)
      bad(fmt::format("{} {} needs {} bytes but data_offsets [{}, {}] hold {}", dt, to_string(e.shape),
                      count > std::numeric_limits<std::uint64_t>::max() / item ? std::string("too many")
                                                                               : std::to_string(count * item),
                      e.begin, e.end, e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // In data order (the order tensors were written in; ties such as adjacent zero-size tensors
  // keep the header's order), the byte ranges must tile the data exactly: no overlaps, no holes.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t cursor = 0;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      fail("safetensors: {}: tensor '{}' (bytes {} to {}) overlaps the tensor before it", source, e.name,
           data_start + e.begin, data_start + e.end);
    if (e.begin > cursor)
      fail("safetensors: {}: a hole of unclaimed bytes {} to {} before tensor '{}'", source, data_start + cursor,
           data_start + e.begin, e.name);
    cursor = e.end;
  }
  if (cursor != data_size)
    fail("safetensors: {}: bytes {} to {} at the end belong to no tensor", source, data_start + cursor,
         data_start + data_size);
  return entries;
}

}  // namespace

NamedTensors parse_safetensors(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8) fail("safetensors: {}: {} bytes is too short for the 8-byte header length", source, bytes.size());
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > kMaxSafetensorsHeader)
    fail("safetensors: {}: the header length at byte 0 is {}, over the {}-byte limit", source, header_size,
         kMaxSafetensorsHeader);
  if (header_size > bytes.size() - 8)
    fail("safetensors: {}: the header length at byte 0 is {}, past the end of the {}-byte file", source, header_size,
         bytes.size());
  if (header_size == 0) fail("safetensors: {}: the header length at byte 0 is 0 (no JSON header)", source);
  const std::string text = bytes.substr(8, header_size);
  const std::uint64_t data_start = 8 + header_size;
  auto entries = parse_header(text, bytes.size() - data_start, source);
  NamedTensors out;
  for (const auto& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.impl().storage->data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    out.emplace_back(e.name, t);
  }
  return out;
}

std::string serialize_safetensors(const NamedTensors& tensors) {
  json header = json::object();
  std::uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (!names.insert(name).second) fail("save_safetensors: the name '{}' appears twice", name);
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", format_name(t.dtype())},
                    {"shape", std::vector<std::int64_t>(t.shape().begin(), t.shape().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does
  std::string out(8, '\0');
  const std::uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  out += text;
  for (const auto& [name, t] : tensors) {
    const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * dtype_size(t.dtype());
    out.append(p, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  }
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors) {
  const std::string bytes = serialize_safetensors(tensors);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("save_safetensors: cannot open {} for writing", tmp);
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                       ::fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !written) {
    std::remove(tmp.c_str());
    fail("save_safetensors: writing {} failed", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("save_safetensors: cannot rename {} to {}", tmp, path);
  }
}

NamedTensors load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("load_safetensors: cannot open {}", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_safetensors(buffer.str(), path);
}

}  // namespace xgrad
