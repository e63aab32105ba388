// The route keys read by filter_schema.cpp: "filters" (deny rules, compiled as they are read).
// Internal to conf/, like validator.h.
#pragma once

#include <string>

#include "conf/validator.h"

namespace sluice::conf {

// Reads `route`'s "filters", if any, into out.filters; every mistake becomes an error of `v`.
void read_route_filters(Validator& v, const Json& route, const std::string& path, RouteConfig& out);

}  // namespace sluice::conf
