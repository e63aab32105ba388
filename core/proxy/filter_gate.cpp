// The filter gate: a table lookup by route, then the route's rules. Nothing here allocates.
#include "core/proxy/filter_gate.h"

#include <llhttp.h>

#include <algorithm>
#include <memory>

#include "core/io/log.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {
namespace {

// A request head as the rules read it.
class FilteredHead final : public conf::FilterRequest {
 public:
  explicit FilteredHead(const MessageHead& head)
      : head_(head),
        method_(llhttp_method_name(static_cast<llhttp_method_t>(head.method))),
        path_(head.path()) {}  // found once, not once per rule
  std::string_view method() const override { return method_; }
  std::string_view path() const override { return path_; }
  size_t field_count() const override { return head_.field_count(); }
  std::string_view name(size_t i) const override { return head_.name(i); }
  std::string_view value(size_t i) const override { return head_.value(i); }

 private:
  const MessageHead& head_;
  std::string_view method_;
  std::string_view path_;
};

}  // namespace

GateVerdict RouteFilterGate::check(const GateInput& input, LocalReply* reply) const {
  if (input.route < 0 || static_cast<size_t>(input.route) >= routes_.size())
    return GateVerdict::kPass;
  const conf::RequestFilter* filter = routes_[input.route].config.filters.get();
  if (filter == nullptr) return GateVerdict::kPass;
  const int rule = filter->denies(FilteredHead(input.request), scratch_);
  if (rule < 0) return GateVerdict::kPass;
  log(LogLevel::kDebug, "client %.*s: denied by filter rule %d of route %d",
      static_cast<int>(input.client.size()), input.client.data(), rule, input.route);
  *reply = LocalReply{403, "denied by a filter of this route", 0, Outcome::kDenied};
  return GateVerdict::kAnswer;
}

void wire_filter_gate(Generation& generation) {
  const std::vector<conf::Route>& routes = generation.snapshot->routes;
  const bool any = std::any_of(routes.begin(), routes.end(),
                               [](const conf::Route& route) { return route.config.filters; });
  if (!any) return;
  auto gate = std::make_shared<RouteFilterGate>(routes);
  generation.chains.request_gates.push_back(gate.get());
  generation.owned.push_back(std::move(gate));
}

}  // namespace sluice::core
