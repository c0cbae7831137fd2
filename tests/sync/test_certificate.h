// Certificates made on the spot, for tests that serve https on 127.0.0.1: a throwaway
// certificate authority (the test's own "département CA") and the server certificates it
// issues. Nothing is committed: every key is generated when the test runs.
#pragma once

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

namespace carnet::testing {

namespace certificate_internal {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Certificate = std::unique_ptr<X509, decltype(&X509_free)>;

// "P-256" (the default) or "RSA" (2048 bits).
inline Key NewKey(const std::string& type) {
  Key key(type == "RSA" ? EVP_RSA_gen(2048) : EVP_EC_gen(type.c_str()), &EVP_PKEY_free);
  REQUIRE(key);
  return key;
}

// A certificate for `key` named `common_name`, signed by `issuer_key` as `issuer` (itself when
// null), with the X.509v3 extensions given as (nid, value) in OpenSSL's configuration syntax.
inline Certificate NewCertificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                                  EVP_PKEY* issuer_key,
                                  const std::vector<std::pair<int, std::string>>& extensions) {
  Certificate cert(X509_new(), &X509_free);
  REQUIRE(cert);
  X509_set_version(cert.get(), 2);
  unsigned char serial[8];
  REQUIRE(RAND_bytes(serial, sizeof serial) == 1);
  serial[0] &= 0x7f;  // positive
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  REQUIRE(number != nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, signer, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    INFO("extension " << OBJ_nid2sn(nid) << " = " << value);
    REQUIRE(extension != nullptr);
    X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
  }
  REQUIRE(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

inline void WritePem(const std::string& cert_file, X509* cert, const std::string& key_file,
                     EVP_PKEY* key) {
  std::unique_ptr<FILE, decltype(&fclose)> cert_out(fopen(cert_file.c_str(), "w"), &fclose);
  REQUIRE(cert_out);
  REQUIRE(PEM_write_X509(cert_out.get(), cert) == 1);
  if (key_file.empty()) return;
  std::unique_ptr<FILE, decltype(&fclose)> key_out(fopen(key_file.c_str(), "w"), &fclose);
  REQUIRE(key_out);
  REQUIRE(PEM_write_PrivateKey(key_out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
}

}  // namespace certificate_internal

// Writes a certificate for `subject_alt_name` ("IP:127.0.0.1", "DNS:records.example") and its
// key as PEM files. The certificate is its own authority: it is the CA file that trusts it.
inline void WriteSelfSignedCertificate(const std::string& cert_file, const std::string& key_file,
                                       const std::string& subject_alt_name) {
  using namespace certificate_internal;
  Key key = NewKey("P-256");
  Certificate cert = NewCertificate(
      key.get(), "carnet test", nullptr, nullptr,
      {{NID_subject_alt_name, subject_alt_name}, {NID_basic_constraints, "critical,CA:TRUE"}});
  WritePem(cert_file, cert.get(), key_file, key.get());
}

// A certificate authority that lives as long as the object. Its certificate is written to
// `ca_file`: the CA file a client is given to trust the servers it issues for.
class TestCa {
 public:
  explicit TestCa(std::string ca_file, const std::string& name = "carnet test CA")
      : ca_file_(std::move(ca_file)),
        key_(certificate_internal::NewKey("P-256")),
        cert_(nullptr, &X509_free) {
    cert_ = certificate_internal::NewCertificate(key_.get(), name, nullptr, nullptr,
                                                 {{NID_basic_constraints, "critical,CA:TRUE"},
                                                  {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                                  {NID_subject_key_identifier, "hash"}});
    certificate_internal::WritePem(ca_file_, cert_.get(), "", nullptr);
  }

  const std::string& ca_file() const { return ca_file_; }

  // Issues a server certificate for `subject_alt_names` (OpenSSL's syntax: "IP:127.0.0.1,
  // DNS:localhost") on a new key of `key_type` ("P-256" or "RSA"), and writes both as PEM.
  void Issue(const std::string& cert_file, const std::string& key_file,
             const std::string& subject_alt_names = "IP:127.0.0.1,DNS:localhost",
             const std::string& key_type = "P-256") const {
    using namespace certificate_internal;
    Key key = NewKey(key_type);
    Certificate cert =
        NewCertificate(key.get(), "carnet-server", cert_.get(), key_.get(),
                       {{NID_basic_constraints, "critical,CA:FALSE"},
                        {NID_key_usage, key_type == "RSA" ? "critical,digitalSignature,"
                                                            "keyEncipherment"
                                                          : "critical,digitalSignature"},
                        {NID_ext_key_usage, "serverAuth"},
                        {NID_subject_alt_name, subject_alt_names},
                        {NID_authority_key_identifier, "keyid:always"}});
    WritePem(cert_file, cert.get(), key_file, key.get());
  }

 private:
  std::string ca_file_;
  certificate_internal::Key key_;
  certificate_internal::Certificate cert_;
};

// The pin of the public key in a PEM certificate file, in libcurl's form: "sha256//" and the
// base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo.
inline std::string PublicKeyPin(const std::string& cert_file) {
  std::unique_ptr<FILE, decltype(&fclose)> in(fopen(cert_file.c_str(), "r"), &fclose);
  REQUIRE(in);
  certificate_internal::Certificate cert(PEM_read_X509(in.get(), nullptr, nullptr, nullptr),
                                         &X509_free);
  REQUIRE(cert);
  unsigned char* der = nullptr;
  int length = i2d_PUBKEY(X509_get0_pubkey(cert.get()), &der);
  REQUIRE(length > 0);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(length), digest);
  OPENSSL_free(der);
  unsigned char base64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
  EVP_EncodeBlock(base64, digest, SHA256_DIGEST_LENGTH);
  return "sha256//" + std::string(reinterpret_cast<char*>(base64));
}

}  // namespace carnet::testing
