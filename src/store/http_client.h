// A small HTTP client over libcurl: HEAD, GET into memory, and GET streamed into a sink with
// Range support. Transport failures (no route, refused, timeout, connection cut) throw
// hondo::Error; HTTP statuses are returned for the caller to interpret.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace hondo {

// The transfer itself failed (no route, refused, timed out, cut off): worth retrying.
class NetworkError : public Error {
 public:
  using Error::Error;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; the last response's
  std::string body;                            // (head/get only)
  std::string header(const std::string& name, const std::string& def = "") const;
};

class HttpClient {
 public:
  using Headers = std::vector<std::string>;  // "Name: value"
  // Receives the body of a 2xx response with its status (206 for a partial answer to a
  // Range request); returning false aborts the transfer.
  using Sink = std::function<bool(long status, const char* data, size_t n)>;

  HttpClient();
  // Without following redirects (the hub answers a HEAD for a large file with a redirect
  // that carries the file's metadata).
  HttpResponse head(const std::string& url, const Headers& headers) const;
  HttpResponse get(const std::string& url, const Headers& headers) const;
  // Follows redirects. The sink sees the body only for 2xx statuses; for other statuses the
  // body (an error message) is kept in the response.
  HttpResponse get_stream(const std::string& url, const Headers& headers, const Sink& sink) const;

  // Seconds without a single byte before a transfer is given up (default 60).
  int stall_timeout = 60;

 private:
  HttpResponse perform(const std::string& url, const Headers& headers, bool head_only, bool follow,
                       const Sink* sink) const;
};

}  // namespace hondo
