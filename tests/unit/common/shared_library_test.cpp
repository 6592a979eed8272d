// SharedLibrary against libraries glibc always installs (libm.so.6, libresolv.so.2):
// symbols resolve and are called, errors name the library (and the symbol), a move keeps
// symbols valid and the last owner closes the library.
#include "common/shared_library.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <resolv.h>

#include <cmath>
#include <string>
#include <string_view>
#include <utility>

namespace flowsec {
namespace {

constexpr const char* kLibm = "libm.so.6";
using Unary = double (*)(double);

TEST(SharedLibrary, ResolvesAndCallsAFunction) {
  auto lib = SharedLibrary::open(kLibm);
  ASSERT_TRUE(lib) << lib.error();
  EXPECT_EQ(lib->name(), kLibm);
  auto cbrt = lib->symbol<Unary>("cbrt");
  ASSERT_TRUE(cbrt) << cbrt.error();
  EXPECT_DOUBLE_EQ((*cbrt)(27.0), 3.0);
}

TEST(SharedLibrary, BindFillsAPointerOfTheDeducedType) {
  auto lib = SharedLibrary::open(kLibm);
  ASSERT_TRUE(lib) << lib.error();
  decltype(&::hypot) hypot_fn = nullptr;
  const auto bound = lib->bind(hypot_fn, "hypot");
  ASSERT_TRUE(bound) << bound.error();
  ASSERT_NE(hypot_fn, nullptr);
  EXPECT_DOUBLE_EQ(hypot_fn(3.0, 4.0), 5.0);
}

TEST(SharedLibrary, MissingLibraryErrorNamesIt) {
  auto lib = SharedLibrary::open("libflowsec-no-such-library.so.1");
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.error().find("libflowsec-no-such-library.so.1"), std::string::npos) << lib.error();
  // dlerror()'s reason is part of it.
  EXPECT_NE(lib.error().find("No such file"), std::string::npos) << lib.error();
}

TEST(SharedLibrary, MissingSymbolErrorNamesSymbolAndLibrary) {
  auto lib = SharedLibrary::open(kLibm);
  ASSERT_TRUE(lib) << lib.error();
  auto missing = lib->symbol<Unary>("flowsec_no_such_symbol");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("flowsec_no_such_symbol"), std::string::npos) << missing.error();
  EXPECT_NE(missing.error().find(kLibm), std::string::npos) << missing.error();

  Unary untouched = nullptr;
  EXPECT_FALSE(lib->bind(untouched, "flowsec_no_such_symbol"));
  EXPECT_EQ(untouched, nullptr);
}

// Nothing else in this process loads libresolv, so whether it is mapped shows when the
// handle really closes.
constexpr const char* kResolv = "libresolv.so.2";
using B64Ntop = decltype(&::b64_ntop);  // __b64_ntop: the name libresolv exports

std::string base64(B64Ntop fn, std::string_view text) {
  char out[64] = {};
  const int n =
      fn(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out, sizeof out);
  return n < 0 ? std::string("(failed)") : std::string(out, static_cast<std::size_t>(n));
}

bool mapped(const char* name) {
  void* h = ::dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
  if (h != nullptr) ::dlclose(h);  // RTLD_NOLOAD still took a reference
  return h != nullptr;
}

TEST(SharedLibrary, MoveKeepsSymbolsValidAndTheLastOwnerCloses) {
  ASSERT_FALSE(mapped(kResolv)) << "something else loaded " << kResolv;
  B64Ntop encode = nullptr;
  {
    auto opened = SharedLibrary::open(kResolv);
    ASSERT_TRUE(opened) << opened.error();
    const auto bound = opened->bind(encode, "__b64_ntop");
    ASSERT_TRUE(bound) << bound.error();

    SharedLibrary moved(std::move(*opened));
    opened = unexpected(std::string("dropped"));  // destroys the moved-from handle
    ASSERT_TRUE(mapped(kResolv));
    EXPECT_EQ(base64(encode, "abc"), "YWJj");
    auto again = moved.symbol<B64Ntop>("__b64_ntop");
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(*again, encode);

    auto other = SharedLibrary::open(kLibm);
    ASSERT_TRUE(other) << other.error();
    *other = std::move(moved);  // move assignment: libm's handle goes, libresolv's stays
    ASSERT_TRUE(mapped(kResolv));
    EXPECT_EQ(base64(encode, "flow"), "Zmxvdw==");
    EXPECT_EQ(other->name(), kResolv);

    // A moved-from handle resolves nothing (dlsym with a null handle would search the
    // whole process instead).
    auto from_moved = moved.symbol<B64Ntop>("__b64_ntop");  // NOLINT(bugprone-use-after-move)
    ASSERT_FALSE(from_moved);
    EXPECT_NE(from_moved.error().find("__b64_ntop"), std::string::npos) << from_moved.error();
  }
  EXPECT_FALSE(mapped(kResolv));
}

}  // namespace
}  // namespace flowsec
