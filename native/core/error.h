// Errors that cross into JavaScript. napi/ maps each Kind to one JS class (napi/common.cpp
// to_js_error, the one mapping): Type -> TypeError, Range -> RangeError, Checkpoint and Config ->
// the package's CheckpointError / ConfigError (lib/errors.ts, handed to the addon at load), Generic
// -> Error. A message written here is what the user reads: name the file, tensor or argument.
#pragma once
#include <stdexcept>
#include <string>

namespace gptoss {

class Error : public std::runtime_error {
 public:
  enum class Kind { Generic, Type, Range, Checkpoint, Config };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind), detail_(message) {}
  // Checkpoint / Config: the file, the tensor or config field (its config.json name) or "", and the
  // message without them; what() is the text lib/errors.ts builds from the same three.
  Error(Kind kind, const std::string& file, const std::string& subject, const std::string& detail)
      : std::runtime_error(file + ": " +
                           (subject.empty() ? "" : (kind == Kind::Config ? "field '" : "tensor '") + subject + "': ") + detail),
        kind_(kind),
        file_(file),
        subject_(subject),
        detail_(detail) {}
  Kind kind() const { return kind_; }
  const std::string& file() const { return file_; }
  const std::string& subject() const { return subject_; }
  const std::string& detail() const { return detail_; }

 private:
  Kind kind_;
  std::string file_, subject_, detail_;
};

inline Error type_error(const std::string& m) { return Error(Error::Kind::Type, m); }
inline Error range_error(const std::string& m) { return Error(Error::Kind::Range, m); }
inline Error runtime_error(const std::string& m) { return Error(Error::Kind::Generic, m); }
// `tensor` may be "" (the file as a whole).
inline Error checkpoint_error(const std::string& file, const std::string& tensor, const std::string& m) {
  return Error(Error::Kind::Checkpoint, file, tensor, m);
}
// `field`: the config.json key (snake_case), e.g. "num_key_value_heads" or "rope_scaling.factor".
inline Error config_error(const std::string& file, const std::string& field, const std::string& m) {
  return Error(Error::Kind::Config, file, field, m);
}

#define GPTOSS_CHECK(cond, make_error) \
  do {                                 \
    if (!(cond)) throw(make_error);    \
  } while (0)

}  // namespace gptoss
