#pragma once
// Twilio's date formats: `YYYY-MM-DDTHH:MM:SSZ` for timestamps, `YYYY-MM-DD` for date filters. Thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace notifyd {

std::int64_t now_seconds();
std::string format_iso8601(std::int64_t epoch_seconds);
// Parses exactly `YYYY-MM-DD` (a real calendar date) to the epoch second of its midnight UTC.
std::optional<std::int64_t> parse_date(std::string_view s);

}  // namespace notifyd
