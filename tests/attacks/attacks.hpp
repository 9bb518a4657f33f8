#pragma once
// The adversarial suite: every row is one attack on the public API, run by the runner in its own
// forked child with a timeout and a memory limit. A row passes ("clean") when the child returns
// normally: the attack either got the xgrad::Error it provoked (expect_error) or a valid result
// it checked against independently computed numbers (expect, expect_values). Otherwise the runner
// classifies the child as:
//   wrong   - bad input accepted, valid input refused, or a result that disagrees (Wrong thrown,
//             or an xgrad::Error escaping the row);
//   escape  - an exception that is not an xgrad::Error (std::bad_alloc, std::out_of_range, ...);
//   crash   - a signal, an abort or a sanitizer report;
//   hang    - still running at the timeout;
//   memory  - resident memory above the limit;
//   skipped - not run in this build (skip_under_sanitizers, with its reason).
// Rows must not build tensors at static-initialization time: the runner forks before xgrad runs.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace xgrad::attacks {

struct Attack {
  const char* category;
  const char* name;
  std::function<void()> run;
};

/// Every row of every category file, in registration order.
std::vector<Attack>& registry();

/// A category file's rows: `static Register rows{"shapes", {{"reshape overflow", [] {...}}, ...}};`
struct Row {
  const char* name;
  std::function<void()> run;
};
struct Register {
  Register(const char* category, std::vector<Row> rows);
};

/// Thrown by the checks below: the child reports the message and the row counts as wrong.
struct Wrong {
  std::string what;
};

/// `f` must throw an xgrad::Error whose message matches `pattern` (std::regex_search, so a
/// message names the op and the values at fault). Any other exception propagates (escape).
void expect_error(const std::function<void()>& f, const std::string& pattern);
/// `ok` must hold; `what` says what was expected.
void expect(bool ok, const std::string& what);
/// Thrown by skip_under_sanitizers: the row is counted as skipped, with its reason.
struct Skipped {
  std::string why;
};
/// Skips the row in a sanitized build (and only there), for a reason in the sanitizer runtime
/// itself; the table reports it.
void skip_under_sanitizers(const std::string& why);

/// To be called in a process forked from a multi-threaded one (a row's own grandchild): the other
/// threads do not exist there, so LeakSanitizer cannot scan their stacks and would report all
/// they referenced as leaked. Turns its exit-time check off for this process only.
void forked_from_threads();
/// `t` must hold exactly `values` (flattened, as float64), NaN where `values` has NaN.
void expect_values(const Tensor& t, const std::vector<double>& values, double tolerance = 0);

}  // namespace xgrad::attacks
