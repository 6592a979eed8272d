#include "flow/flow_record.hpp"

namespace flowsec::flow {

std::string_view to_string(EndReason r) {
  switch (r) {
    case EndReason::idle_timeout:
      return "idle_timeout";
    case EndReason::active_timeout:
      return "active_timeout";
    case EndReason::end_of_flow:
      return "end_of_flow";
    case EndReason::forced_end:
      return "forced_end";
    case EndReason::lack_of_resources:
      return "lack_of_resources";
  }
  return "unknown";
}

}  // namespace flowsec::flow
