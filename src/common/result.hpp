#pragma once
// Result type for every fallible call on the data path: a value or an error,
// never an exception. Wraps tl::expected (Debian libexpected-dev), which has
// the interface of C++23 std::expected so the switch later is a rename.
#include <tl/expected.hpp>

namespace flowsec {

template <class T, class E>
using Expected = tl::expected<T, E>;

template <class E>
[[nodiscard]] constexpr tl::unexpected<E> unexpected(E e) {
  return tl::unexpected<E>(std::move(e));
}

}  // namespace flowsec
