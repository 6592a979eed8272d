#include "flow/l7_classifier.hpp"

#include <ndpi_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/shared_library.hpp"

namespace flowsec::flow {

// nDPI's functions, loaded with the first classifier (README: dependencies).
struct NdpiApi {
  SharedLibrary library;
  decltype(&::ndpi_init_detection_module) init_detection_module = nullptr;
  decltype(&::ndpi_set_protocol_detection_bitmask2) set_protocol_detection_bitmask2 = nullptr;
  decltype(&::ndpi_finalize_initialization) finalize_initialization = nullptr;
  decltype(&::ndpi_exit_detection_module) exit_detection_module = nullptr;
  decltype(&::ndpi_detection_get_sizeof_ndpi_flow_struct) sizeof_flow_struct = nullptr;
  decltype(&::ndpi_detection_process_packet) detection_process_packet = nullptr;
  decltype(&::ndpi_extra_dissection_possible) extra_dissection_possible = nullptr;
  decltype(&::ndpi_detection_giveup) detection_giveup = nullptr;
  decltype(&::ndpi_free_flow_data) free_flow_data = nullptr;
  decltype(&::ndpi_protocol2name) protocol2name = nullptr;
};

namespace {

Expected<NdpiApi, std::string> load_ndpi() {
  const auto fail = [](const std::string& why) {
    return unexpected("L7 classification needs libndpi (--no-l7 goes without): " + why);
  };
  auto lib = SharedLibrary::open(FLOWSEC_LIBNDPI_SONAME);
  if (!lib) return fail(lib.error());
  NdpiApi a{std::move(*lib)};
  const SharedLibrary& l = a.library;
  const Expected<void, std::string> bound[] = {
      l.bind(a.init_detection_module, "ndpi_init_detection_module"),
      l.bind(a.set_protocol_detection_bitmask2, "ndpi_set_protocol_detection_bitmask2"),
      l.bind(a.finalize_initialization, "ndpi_finalize_initialization"),
      l.bind(a.exit_detection_module, "ndpi_exit_detection_module"),
      l.bind(a.sizeof_flow_struct, "ndpi_detection_get_sizeof_ndpi_flow_struct"),
      l.bind(a.detection_process_packet, "ndpi_detection_process_packet"),
      l.bind(a.extra_dissection_possible, "ndpi_extra_dissection_possible"),
      l.bind(a.detection_giveup, "ndpi_detection_giveup"),
      l.bind(a.free_flow_data, "ndpi_free_flow_data"),
      l.bind(a.protocol2name, "ndpi_protocol2name"),
  };
  for (const auto& b : bound) {
    if (!b) return fail(b.error());
  }
  return a;
}

// Loaded once (thread-safe) and never unloaded: the process-wide names module
// (l7_protocol_name) is freed by a static destructor that must still find nDPI's code.
const Expected<NdpiApi, std::string>& ndpi_api() {
  static const auto* const api = new Expected<NdpiApi, std::string>(load_ndpi());
  return *api;
}

ndpi_detection_module_struct* new_module(const NdpiApi& ndpi) {
  ndpi_detection_module_struct* m = ndpi.init_detection_module(ndpi_no_prefs);
  if (m == nullptr) return nullptr;
  NDPI_PROTOCOL_BITMASK all;
  NDPI_BITMASK_SET_ALL(all);
  ndpi.set_protocol_detection_bitmask2(m, &all);
  ndpi.finalize_initialization(m);
  return m;
}

std::string name_with(const NdpiApi& ndpi, ndpi_detection_module_struct* m, std::uint16_t master,
                      std::uint16_t app) {
  if (master == NDPI_PROTOCOL_UNKNOWN && app == NDPI_PROTOCOL_UNKNOWN) return "Unknown";
  ndpi_protocol p{};
  p.master_protocol = master;
  p.app_protocol = app;
  char buf[128];
  // "master.app" when both are set and differ, otherwise the one set (nDPI's own rule).
  const char* s = ndpi.protocol2name(m, p, buf, sizeof buf);
  return s != nullptr ? std::string(s) : std::string("Unknown");
}

L7Result to_result(const ndpi_protocol& p, const ndpi_flow_struct* f) {
  L7Result r;
  r.master = p.master_protocol;
  r.app = p.app_protocol;
  // nDPI reports the master in both fields for a plain protocol (e.g. 5.5): keep one.
  if (r.master == r.app) r.master = NDPI_PROTOCOL_UNKNOWN;
  r.confidence = static_cast<std::uint8_t>(f->confidence);
  return r;
}

bool detected(const ndpi_protocol& p) {
  return p.app_protocol != NDPI_PROTOCOL_UNKNOWN || p.master_protocol != NDPI_PROTOCOL_UNKNOWN;
}

}  // namespace

Expected<std::unique_ptr<L7Classifier>, std::string> L7Classifier::create(
    const L7Options& options) {
  const auto& ndpi = ndpi_api();
  if (!ndpi) return unexpected(ndpi.error());
  ndpi_detection_module_struct* m = new_module(*ndpi);
  if (m == nullptr) return unexpected(std::string("nDPI: cannot initialise the detection module"));
  return std::unique_ptr<L7Classifier>(new L7Classifier(options, *ndpi, m));
}

L7Classifier::L7Classifier(const L7Options& options, const NdpiApi& ndpi,
                           ndpi_detection_module_struct* module)
    : options_(options),
      ndpi_(ndpi),
      module_(module),
      flow_struct_size_(ndpi.sizeof_flow_struct()) {
  if (options_.max_packets == 0) options_.max_packets = 1;
  options_.max_packets = std::min<std::uint16_t>(options_.max_packets, 255);
  pool_.reserve(options_.pool_size);
}

L7Classifier::~L7Classifier() {
  for (ndpi_flow_struct*& f : slots_) {
    if (f != nullptr) {
      ndpi_.free_flow_data(f);
      std::free(f);
      f = nullptr;
    }
  }
  for (ndpi_flow_struct* f : pool_) std::free(f);
  ndpi_.exit_detection_module(module_);
}

void L7Classifier::reserve_slots(std::uint32_t n) {
  if (n <= slots_.size()) return;
  const std::size_t size = std::max<std::size_t>({n, 2 * slots_.size(), 1024});
  slots_.resize(size, nullptr);
  packets_.resize(size, 0);
}

ndpi_flow_struct* L7Classifier::acquire() {
  if (!pool_.empty()) {
    ndpi_flow_struct* f = pool_.back();
    pool_.pop_back();
    return f;
  }
  // nDPI wants a zeroed struct of the size the library (not the header) says.
  return static_cast<ndpi_flow_struct*>(std::calloc(1, flow_struct_size_));
}

void L7Classifier::recycle(ndpi_flow_struct* f) {
  ndpi_.free_flow_data(f);
  if (pool_.size() < options_.pool_size) {
    std::memset(static_cast<void*>(f), 0, flow_struct_size_);
    pool_.push_back(f);
  } else {
    std::free(f);
  }
  --stats_.states_in_use;
}

bool L7Classifier::process(std::uint32_t slot, std::span<const std::byte> frame,
                           const packet::PacketView& v, std::int64_t timestamp_ns, L7Result& out) {
  if (slot >= slots_.size()) reserve_slots(slot + 1);
  if (frame.size() <= v.l3_offset) return false;
  ndpi_flow_struct*& f = slots_[slot];
  if (f == nullptr) {
    f = acquire();
    if (f == nullptr) return false;  // out of memory: try again with the next packet
    packets_[slot] = 0;
    ++stats_.states_in_use;
  }
  // The IP packet as far as it was captured, never beyond its own length.
  std::size_t len = std::min<std::size_t>(frame.size() - v.l3_offset, v.ip_length);
  len = std::min<std::size_t>(len, 0xffff);
  const auto* ip = reinterpret_cast<const unsigned char*>(frame.data() + v.l3_offset);
  const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(timestamp_ns, 0) / 1'000'000);
  ++stats_.packets;
  const ndpi_protocol p =
      ndpi_.detection_process_packet(module_, f, ip, static_cast<unsigned short>(len), ms);
  ++packets_[slot];

  if (detected(p) && ndpi_.extra_dissection_possible(module_, f) == 0) {
    out = to_result(p, f);
    ++stats_.flows_classified;
    recycle(f);
    f = nullptr;
    return true;
  }
  if (packets_[slot] >= options_.max_packets) {
    out = finish(slot);
    return true;
  }
  return false;
}

L7Result L7Classifier::finish(std::uint32_t slot) {
  L7Result r;
  if (slot >= slots_.size() || slots_[slot] == nullptr) return r;
  ndpi_flow_struct* f = slots_[slot];
  // Already detected (extra dissection pending): that result stands; otherwise nDPI's
  // guess from ports and addresses.
  ndpi_protocol p{};
  p.master_protocol = f->detected_protocol_stack[1];
  p.app_protocol = f->detected_protocol_stack[0];
  if (detected(p)) {
    ++stats_.flows_classified;
  } else {
    std::uint8_t guessed = 0;
    p = ndpi_.detection_giveup(module_, f, 1, &guessed);
    ++stats_.flows_given_up;
  }
  r = to_result(p, f);
  recycle(f);
  slots_[slot] = nullptr;
  return r;
}

void L7Classifier::release(std::uint32_t slot) {
  if (slot >= slots_.size() || slots_[slot] == nullptr) return;
  recycle(slots_[slot]);
  slots_[slot] = nullptr;
}

std::string L7Classifier::name(std::uint16_t master, std::uint16_t app) const {
  return name_with(ndpi_, module_, master, app);
}

std::string l7_protocol_name(std::uint16_t master, std::uint16_t app) {
  // One module for names only, built on first use and freed at exit; without nDPI
  // (not installed) every name is "Unknown".
  struct Names {
    const NdpiApi* ndpi = nullptr;
    ndpi_detection_module_struct* m = nullptr;
    Names() {
      if (const auto& api = ndpi_api()) {
        ndpi = &*api;
        m = new_module(*api);
      }
    }
    ~Names() {
      if (m != nullptr) ndpi->exit_detection_module(m);
    }
  };
  static const Names names;
  if (names.m == nullptr) return "Unknown";
  return name_with(*names.ndpi, names.m, master, app);
}

}  // namespace flowsec::flow
