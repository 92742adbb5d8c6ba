#pragma once
// FormParams: a decoded application/x-www-form-urlencoded body or query string, keys in order and
// repeated keys kept (Twilio's arrays). Plain value; any thread. Parsing fails with 400/20001 when
// the encoding is invalid or the decoded text is not UTF-8.
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/model/api_error.hpp"

namespace notifyd::api {

class FormParams {
 public:
  static Result<FormParams> parse(std::string_view encoded);

  bool has(std::string_view key) const;
  std::optional<std::string> get(std::string_view key) const;  // the first value
  std::vector<std::string> get_all(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  // 400/20001 naming the first parameter not in `allowed`.
  Status check_known(std::span<const std::string_view> allowed) const;
  Status check_known(std::initializer_list<std::string_view> allowed) const {
    return check_known(std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

bool is_valid_utf8(std::string_view s);

}  // namespace notifyd::api
