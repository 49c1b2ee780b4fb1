#include "store/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace hondo {

std::string HttpResponse::header(const std::string& name, const std::string& def) const {
  auto it = headers.find(name);
  return it == headers.end() ? def : it->second;
}

HttpClient::HttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {

struct Transfer {
  HttpResponse* resp;
  const HttpClient::Sink* sink;
  bool aborted = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a redirect or 100-continue); its status decides where the body
    // goes, so it is read here, before the first body byte.
    t->resp->headers.clear();
    const auto sp = line.find(' ');
    if (sp != std::string::npos) t->resp->status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    value.erase(0, value.find_first_not_of(" \t"));
    t->resp->headers[name] = value;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->sink && t->resp->status / 100 == 2) {
    if (!(*t->sink)(t->resp->status, data, bytes)) {
      t->aborted = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
  } else {
    t->resp->body.append(data, bytes);
  }
  return bytes;
}

}  // namespace

HttpResponse HttpClient::perform(const std::string& url, const Headers& headers, bool head_only,
                                 bool follow, const Sink* sink) const {
  CURL* c = curl_easy_init();
  if (!c) fail("HTTP: cannot initialise libcurl");
  HttpResponse resp;
  Transfer t{&resp, sink};
  curl_slist* hl = nullptr;
  for (const auto& h : headers) hl = curl_slist_append(hl, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "hondo/0.1");
  curl_easy_setopt(c, CURLOPT_NOBODY, head_only ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, long(stall_timeout));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  if (t.aborted) throw Error("transfer stopped by the receiver");
  if (rc != CURLE_OK) {
    const std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_OPERATION_TIMEDOUT ||
        rc == CURLE_GOT_NOTHING)
      throw NetworkError(cat("connection lost: ", why));
    throw NetworkError(cat("cannot reach ", url, ": ", why));
  }
  resp.status = code;
  return resp;
}

HttpResponse HttpClient::head(const std::string& url, const Headers& headers) const {
  return perform(url, headers, true, false, nullptr);
}

HttpResponse HttpClient::get(const std::string& url, const Headers& headers) const {
  return perform(url, headers, false, true, nullptr);
}

HttpResponse HttpClient::get_stream(const std::string& url, const Headers& headers,
                                    const Sink& sink) const {
  return perform(url, headers, false, true, &sink);
}

}  // namespace hondo
