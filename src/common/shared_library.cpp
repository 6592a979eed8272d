#include "common/shared_library.hpp"

#include <dlfcn.h>

#include <utility>

namespace flowsec {

namespace {

std::string last_dl_error() {
  const char* e = ::dlerror();
  return e != nullptr ? std::string(e) : std::string("unknown error");
}

}  // namespace

Expected<SharedLibrary, std::string> SharedLibrary::open(const std::string& name) {
  void* handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return unexpected("cannot load " + name + ": " + last_dl_error());
  return SharedLibrary(handle, name);
}

SharedLibrary::SharedLibrary(SharedLibrary&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), name_(std::move(other.name_)) {}

SharedLibrary& SharedLibrary::operator=(SharedLibrary&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) ::dlclose(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

SharedLibrary::~SharedLibrary() {
  if (handle_ != nullptr) ::dlclose(handle_);
}

Expected<void*, std::string> SharedLibrary::lookup(const char* symbol) const {
  const auto fail = [&](const std::string& why) {
    return unexpected("cannot resolve " + std::string(symbol) + " in " + name_ + ": " + why);
  };
  if (handle_ == nullptr) return fail("the library was moved away");
  ::dlerror();  // clear a stale error: only one raised by this dlsym counts
  void* address = ::dlsym(handle_, symbol);
  if (address == nullptr) return fail(last_dl_error());
  return address;
}

}  // namespace flowsec
