#pragma once
// SharedLibrary: a library opened at run time (dlopen, RTLD_NOW | RTLD_LOCAL) and its
// symbols, for dependencies that only some configurations use, so the others do not pay
// for loading them at start-up.
//
// Contract: open() and symbol() return an error line naming the library (and the symbol)
// with dlerror()'s reason; they never throw. Owns the handle: dlclose in the destructor;
// movable, not copyable, and a move keeps resolved symbols valid. A table of symbols that
// must stay valid for the life of the process belongs to a SharedLibrary that is never
// destroyed. Thread-safe as dlopen/dlsym are (dlerror is per thread in glibc).
#include <string>
#include <type_traits>

#include "common/result.hpp"

namespace flowsec {

class SharedLibrary {
 public:
  // `name` as dlopen takes it: a soname ("libcurl.so.4") or a path.
  [[nodiscard]] static Expected<SharedLibrary, std::string> open(const std::string& name);

  SharedLibrary(SharedLibrary&& other) noexcept;
  SharedLibrary& operator=(SharedLibrary&& other) noexcept;
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary();

  [[nodiscard]] const std::string& name() const { return name_; }

  // The function `symbol` as F, a function pointer type (decltype(&::curl_easy_init)).
  template <class F>
  [[nodiscard]] Expected<F, std::string> symbol(const char* symbol) const {
    static_assert(std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>,
                  "SharedLibrary::symbol<F>: F must be a function pointer type");
    auto address = lookup(symbol);
    if (!address) return unexpected(std::move(address.error()));
    return reinterpret_cast<F>(*address);
  }

  // symbol() into `fn`, its type deduced: for filling a table of function pointers.
  template <class F>
  [[nodiscard]] Expected<void, std::string> bind(F& fn, const char* symbol) const {
    auto resolved = this->symbol<F>(symbol);
    if (!resolved) return unexpected(std::move(resolved.error()));
    fn = *resolved;
    return {};
  }

 private:
  SharedLibrary(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  [[nodiscard]] Expected<void*, std::string> lookup(const char* symbol) const;

  void* handle_ = nullptr;  // nullptr once moved from
  std::string name_;
};

}  // namespace flowsec
