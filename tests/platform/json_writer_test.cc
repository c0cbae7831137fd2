// The command-line tools' JSON: rapidjson's escapes, and bytes that are not UTF-8 made U+FFFD so
// that what `carnet get` or `carnet-server audit` prints always parses.
#include "platform/json_writer.h"

#include <catch2/catch.hpp>
#include <string>

using carnet::JsonWriter;
using carnet::ValidUtf8;

namespace {

const std::string kFffd = "\xef\xbf\xbd";

std::string Quoted(const std::string& text) {
  JsonWriter json;
  return json.String(text).text();
}

}  // namespace

TEST_CASE("Each byte that starts no UTF-8 sequence becomes one U+FFFD", "[platform][json]") {
  CHECK(ValidUtf8("plain") == "plain");
  CHECK(ValidUtf8("caf\xc3\xa9 \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xf0\x9f\x98\x80");
  CHECK(ValidUtf8("a\xff"
                  "b") == "a" + kFffd + "b");
  // A lead byte whose follower is no continuation: the follower is kept.
  CHECK(ValidUtf8("\xc3"
                  "A") == kFffd + "A");
  // Cut short by the end: one replacement per byte left.
  CHECK(ValidUtf8("x\xe2\x82") == "x" + kFffd + kFffd);
  // Overlong forms, surrogates and code points past U+10FFFF are not characters.
  CHECK(ValidUtf8("\xc0\x80") == kFffd + kFffd);
  CHECK(ValidUtf8("\xe0\x80\x80") == kFffd + kFffd + kFffd);
  CHECK(ValidUtf8("\xed\xa0\x80") == kFffd + kFffd + kFffd);
  CHECK(ValidUtf8("\xf4\x90\x80\x80") == kFffd + kFffd + kFffd + kFffd);
  CHECK(ValidUtf8(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

TEST_CASE("Strings and keys are escaped and made valid UTF-8", "[platform][json]") {
  CHECK(Quoted("Ben \"Ali\" \\ /") == R"("Ben \"Ali\" \\ /")");
  CHECK(Quoted("line\nnext\ttab\r\b\f") == R"("line\nnext\ttab\r\b\f")");
  CHECK(Quoted(std::string("\x01\0", 2)) == R"("\u0001\u0000")");
  CHECK(Quoted("bad \xfe") == "\"bad " + kFffd + "\"");
  JsonWriter json;
  json.BeginObject().Key("k\xff").String("v").Key("n").Int(-3).Key("u").Uint(18446744073709551615u);
  json.Key("b").Bool(false).Key("z").Null().Key("a").BeginArray().String("x").Int(1).EndArray();
  CHECK(json.EndObject().text() ==
        "{\"k" + kFffd +
            "\":\"v\",\"n\":-3,\"u\":18446744073709551615,\"b\":false,\"z\":null,"
            "\"a\":[\"x\",1]}");
}
