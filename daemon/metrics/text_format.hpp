#pragma once
// The Prometheus text exposition format, version 0.0.4: "# HELP" and "# TYPE" lines, then one line per
// sample, label values escaped (backslash, double quote, newline), numbers as Go's ParseFloat reads them.
// Pure functions; never throw except std::bad_alloc.
#include <span>
#include <string>
#include <string_view>

#include "daemon/metrics/snapshot.hpp"

namespace notifyd::metrics {

inline constexpr std::string_view kTextFormatContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_text(std::span<const FamilySnapshot> families);

// A label value between double quotes: \ -> \\, " -> \", newline -> \n.
std::string escape_label_value(std::string_view value);
// HELP text: \ -> \\, newline -> \n.
std::string escape_help(std::string_view help);
// Integers (up to 2^53) without a fraction or exponent, others in the shortest form that reads back
// exactly; "+Inf", "-Inf", "NaN".
std::string format_number(double value);

}  // namespace notifyd::metrics
