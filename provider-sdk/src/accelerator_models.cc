#include "computenet/provider/accelerator_models.h"

#include <algorithm>
#include <cctype>

namespace computenet::provider {

const std::vector<std::string>& KnownAcceleratorModels() {
  static const std::vector<std::string> kModels = {
      "A100", "A800", "A10", "H100", "H800", "H20",
      "L40S", "L20",  "T4",  "V100", "P100"};
  return kModels;
}

CatalogModel CatalogModelFromDeviceName(std::string_view device_name) {
  const auto& known = KnownAcceleratorModels();
  std::string word;
  auto match = [&]() -> bool {
    return std::find(known.begin(), known.end(), word) != known.end();
  };
  for (size_t i = 0; i <= device_name.size(); ++i) {
    const bool alnum = i < device_name.size() &&
                       std::isalnum(static_cast<unsigned char>(device_name[i]));
    if (alnum) {
      word.push_back(static_cast<char>(
          std::toupper(static_cast<unsigned char>(device_name[i]))));
      continue;
    }
    if (!word.empty() && match()) return CatalogModel{word, true};
    word.clear();
  }
  size_t begin = 0;
  size_t end = device_name.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(device_name[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(device_name[end - 1]))) --end;
  return CatalogModel{std::string(device_name.substr(begin, end - begin)), false};
}

}  // namespace computenet::provider
