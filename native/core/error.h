// Errors that cross into JavaScript. napi/ maps Kind to TypeError / RangeError / Error,
// so a message written here is what the user reads: name the file, tensor or argument.
#pragma once
#include <stdexcept>
#include <string>

namespace gptoss {

class Error : public std::runtime_error {
 public:
  enum class Kind { Generic, Type, Range };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

inline Error type_error(const std::string& m) { return Error(Error::Kind::Type, m); }
inline Error range_error(const std::string& m) { return Error(Error::Kind::Range, m); }
inline Error runtime_error(const std::string& m) { return Error(Error::Kind::Generic, m); }

#define GPTOSS_CHECK(cond, make_error) \
  do {                                 \
    if (!(cond)) throw(make_error);    \
  } while (0)

}  // namespace gptoss
