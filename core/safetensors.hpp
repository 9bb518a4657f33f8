#pragma once
// safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw little-endian data. The format PyTorch, JAX and
// Hugging Face share, so weights move between them and xgrad.
#include <string>
#include <utility>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad {

/// Named tensors in a fixed order (the order of a state_dict).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// Largest header accepted when loading (a hostile file cannot make us allocate more).
inline constexpr std::size_t kMaxSafetensorsHeader = 100 * 1024 * 1024;

/// Writes the tensors to `path` atomically: a temporary file of this save's own beside it
/// ("<path>.tmp.<pid>.<n>"), fsync'ed, renamed over `path`, then the directory fsync'ed. A reader,
/// a crash or a concurrent save to the same path sees the old file or the new one, never a mix.
/// When `path` is a symbolic link, the file it points to is written (atomically, the same way,
/// beside that file) and the link stays a link.
void save_safetensors(const std::string& path, const NamedTensors& tensors);

/// Reads every tensor of a regular file (a FIFO, device or directory is an error, without
/// blocking). Everything is validated before any data is read: the header length (read first,
/// alone), the JSON, dtypes (F32, F64, I64), shapes against byte lengths, and that the byte
/// ranges lie inside the file with no holes or overlaps. Errors name the file and the byte offset.
NamedTensors load_safetensors(const std::string& path);

/// The same for bytes already in memory; `source` names them in errors.
NamedTensors parse_safetensors(const std::string& bytes, const std::string& source);
std::string serialize_safetensors(const NamedTensors& tensors);

}  // namespace xgrad
