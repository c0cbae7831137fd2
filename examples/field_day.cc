// The field day: three tablets and a real carnet-server process serving HTTPS with a certificate
// from the département's CA, made for the run with the openssl command line. A morning online, a
// day offline with real conflicts, an evening sync cut by a server crash and resumed, then a check
// that every tablet holds exactly what the server says its scope holds.
//   field_day --server-binary BUILD/platform/carnet-server
#include <stdlib.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "carnet/posix_env.h"
#include "carnet/transport.h"
#include "examples/field_day.h"
#include "examples/field_day_process.h"

namespace field_day {
namespace {

using carnet::Result;
using carnet::Status;

constexpr const char* kTerritory = "vallee-nord";

Status Enroll(const std::string& binary, const std::string& store_spec, const std::string& log,
              Tablet& tablet) {
  Result<std::string> out =
      RunProgram({binary, "enroll", "--store", store_spec, "--device", tablet.device, "--adviser",
                  tablet.adviser, "--territory", kTerritory},
                 log);
  if (!out.ok()) return out.status();
  tablet.enrollment_code = out->substr(0, out->find('\n'));
  if (tablet.enrollment_code.empty()) {
    return carnet::Internal("carnet-server enroll printed no enrollment code");
  }
  std::printf("enrollment code for %s (adviser %s, territory %s): %s\n", tablet.device.c_str(),
              tablet.adviser.c_str(), kTerritory, tablet.enrollment_code.c_str());
  return Status::Ok();
}

// The département's TLS, as its IT makes it with the openssl command line: a CA, whose
// certificate the tablets are given, and carnet-server's key with a certificate for 127.0.0.1
// signed by that CA. Made afresh for each run, in the run's folder; nothing is committed.
struct Tls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string pin;  // the server key's pin, "sha256//BASE64", which one tablet also checks
};

Result<Tls> MakeCertificates(const std::string& dir, const std::string& log) {
  Tls tls{dir + "/ca.pem", dir + "/server-cert.pem", dir + "/server-key.pem", ""};
  const std::string ca_key = dir + "/ca-key.pem", request = dir + "/server.csr";
  const std::string extensions = dir + "/server.ext", public_key = dir + "/server-public.der";
  const std::string digest = dir + "/server-public.sha256";
  std::ofstream(extensions) << "basicConstraints = critical,CA:FALSE\n"
                               "keyUsage = critical,digitalSignature\n"
                               "extendedKeyUsage = serverAuth\n"
                               "subjectAltName = IP:127.0.0.1,DNS:localhost\n";
  const std::vector<std::vector<std::string>> steps = {
      // The CA: a P-256 key and a self-signed certificate, for two days.
      {"openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-keyout", ca_key, "-out", tls.ca_file, "-days", "2", "-subj",
       "/CN=Departement field-day CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"},
      // The server's key and certificate request, then the certificate the CA signs.
      {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", tls.key_file, "-out", request, "-subj", "/CN=carnet-server"},
      {"openssl", "x509", "-req", "-in", request, "-CA", tls.ca_file, "-CAkey", ca_key,
       "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", tls.cert_file},
      // The pin: the SHA-256 of the server's public key (DER SubjectPublicKeyInfo), in base64.
      {"openssl", "pkey", "-in", tls.key_file, "-pubout", "-outform", "der", "-out", public_key},
      {"openssl", "dgst", "-sha256", "-binary", "-out", digest, public_key},
  };
  for (const std::vector<std::string>& step : steps) {
    Result<std::string> out = RunProgram(step, log);
    if (!out.ok()) {
      return Status(out.status().code(), out.status().message() +
                                             " (the openssl command line is needed: "
                                             "platform/install-deps installs it)");
    }
  }
  Result<std::string> base64 = RunProgram({"openssl", "base64", "-A", "-in", digest}, log);
  if (!base64.ok()) return base64.status();
  tls.pin = "sha256//" + base64->substr(0, base64->find_first_of("\r\n"));
  std::printf("the département's CA and carnet-server's certificate for 127.0.0.1 (openssl)\n");
  return tls;
}

// A tablet not given the département's CA must refuse the server before sending anything.
Status CheckUntrustedRefused(int port) {
  carnet::CurlOptions curl;
  curl.base_url = "https://127.0.0.1:" + std::to_string(port);
  curl.connect_timeout_ms = 2000;
  Result<std::unique_ptr<carnet::Transport>> transport = carnet::MakeCurlTransport(curl);
  if (!transport.ok()) return transport.status();
  Result<carnet::HttpReply> reply = (*transport)->Post({"/v1/status", {}, ""});
  if (reply.ok()) return carnet::Internal("a tablet without the CA reached the server");
  std::printf("a tablet without the CA refuses it: %s\n", reply.status().message().c_str());
  return Status::Ok();
}

Status OpenTablet(carnet::Env* env, const std::string& dir, int port, const Tls& tls,
                  Tablet& tablet) {
  carnet::StoreOptions options;
  options.path = dir + "/" + tablet.device + ".db";
  options.device_id = tablet.device;
  options.env = env;
  Result<std::unique_ptr<carnet::Store>> store = carnet::Store::Open(options);
  if (!store.ok()) return store.status();
  tablet.store = std::move(*store);
  carnet::CurlOptions curl;
  curl.base_url = "https://127.0.0.1:" + std::to_string(port);
  curl.ca_file = tls.ca_file;  // the certificate is checked against the département's CA
  // Amina's tablet also pins the server's key: a certificate from the same CA for another key
  // would not do either.
  if (tablet.device == "tablet-amina") curl.pinned_public_key = tls.pin;
  curl.connect_timeout_ms = 2000;
  Result<std::unique_ptr<carnet::Transport>> transport = carnet::MakeCurlTransport(curl);
  if (!transport.ok()) return transport.status();
  carnet::SyncOptions sync;
  // Exchanged for the device token at the first sync; the code is then spent.
  sync.enrollment_code = tablet.enrollment_code;
  sync.push_batch = 3;  // small, so that the evening's sync is cut between batches
  sync.max_attempts = 2;
  sync.backoff_initial_ms = 100;
  sync.backoff_max_ms = 400;
  tablet.client =
      std::make_unique<carnet::SyncClient>(tablet.store.get(), env, std::move(*transport), sync);
  tablet.client->OnProgress([&tablet](const carnet::SyncProgress& p) { tablet.progress = p; });
  return Status::Ok();
}

Status Sync(Tablet& tablet) {
  tablet.progress = {};
  Status status = tablet.client->SyncNow();
  if (!status.ok()) return Status(status.code(), tablet.device + " sync: " + status.message());
  std::printf("%s synced: pushed %" PRIu64 ", pulled %" PRIu64 "\n", tablet.device.c_str(),
              tablet.progress.pushed, tablet.progress.pulled);
  return Status::Ok();
}

Status Participant(carnet::Transaction& tx, Cast& cast, const std::string& id,
                   const std::string& first, const std::string& last, const std::string& phase) {
  cast.names[id] = first + " " + last;
  return tx.Put("participants", id,
                {{"referent", "amina"},
                 {"territory", kTerritory},
                 {"first_name", first},
                 {"last_name", last},
                 {"status", "active"},
                 {"phase", phase},
                 {"entry_date", "2025-02-03"},
                 {"commune", "Saint-Aubin"}});
}

// An interview of amina's with its first note; the participant first (see Morning).
Status Interview(carnet::Transaction& tx, const std::string& id, const std::string& participant,
                 const std::string& date_time, const std::string& place, const std::string& phase,
                 const std::string& note) {
  CARNET_RETURN_IF_ERROR(tx.Put("interviews", id,
                                {{"participant", participant},
                                 {"adviser", "amina"},
                                 {"date_time", date_time},
                                 {"place", place},
                                 {"phase", phase},
                                 {"kind", "regular"}}));
  return tx.Append("interviews", id, "notes", note).status();
}

Status Register(carnet::Transaction& tx, const Cast& cast, const std::string& participant,
                const std::string& status) {
  CARNET_RETURN_IF_ERROR(tx.Add("workshops", cast.workshop, "registered", participant));
  return tx.Put("attendance", carnet::AttendanceId(cast.workshop, participant),
                {{"participant", participant}, {"session", cast.workshop}, {"status", status}});
}

// Amina, connected at the office, creates the day's records in one transaction. Each record's
// scope field (referent and territory, participant, territory) is written first: carnet-server
// refuses a push batch that creates a participant without them, and batches of 3 cut records.
Status Morning(Tablet& amina, Cast& cast) {
  carnet::Store& store = *amina.store;
  cast.nadia = store.NewId();
  cast.julien = store.NewId();
  cast.sophie = store.NewId();
  cast.interview = store.NewId();
  cast.workshop = store.NewId();
  Result<carnet::Transaction> tx = store.Begin();
  if (!tx.ok()) return tx.status();
  CARNET_RETURN_IF_ERROR(Participant(*tx, cast, cast.nadia, "Nadia", "Benali", "assessment"));
  CARNET_RETURN_IF_ERROR(Participant(*tx, cast, cast.julien, "Julien", "Morel", "job_search"));
  CARNET_RETURN_IF_ERROR(Participant(*tx, cast, cast.sophie, "Sophie", "Laurent", "life_project"));
  CARNET_RETURN_IF_ERROR(tx->Add("participants", cast.nadia, "barriers", "mobility"));
  cast.names[cast.interview] = "Nadia's interview of 14 March";
  CARNET_RETURN_IF_ERROR(
      Interview(*tx, cast.interview, cast.nadia, "2025-03-14T09:00:00Z", "office", "assessment",
                "Wants to train as a care assistant; driving licence in progress."));
  cast.names[cast.workshop] = "CV workshop";
  CARNET_RETURN_IF_ERROR(tx->Put("workshops", cast.workshop,
                                 {{"territory", kTerritory},
                                  {"theme", "CV and job interview"},
                                  {"date_time", "2025-03-14T14:00:00Z"},
                                  {"place", "Salle des fetes, Saint-Aubin"},
                                  {"facilitator", "chloe"},
                                  {"capacity", "12"}}));
  CARNET_RETURN_IF_ERROR(Register(*tx, cast, cast.nadia, "registered"));
  CARNET_RETURN_IF_ERROR(Register(*tx, cast, cast.julien, "registered"));
  CARNET_RETURN_IF_ERROR(tx->Commit());
  std::printf("%s: 3 participants, Nadia's interview, the CV workshop with 2 registered\n",
              amina.device.c_str());
  return Status::Ok();
}

Status AminaOffline(carnet::Store& s, Cast& cast) {
  CARNET_RETURN_IF_ERROR(s.Set("participants", cast.nadia, "phase", "professional_project"));
  std::printf("tablet-amina: Nadia's phase -> professional_project\n");
  CARNET_RETURN_IF_ERROR(s.Append("interviews", cast.interview, "notes",
                                  "Visited the care home: trial day agreed for 20 March.")
                             .status());
  CARNET_RETURN_IF_ERROR(
      s.Set("interviews", cast.interview, "next_appointment", "2025-03-20T10:00:00Z"));
  std::printf("tablet-amina: a note and the next appointment on Nadia's interview\n");
  cast.visit = s.NewId();
  cast.names[cast.visit] = "Julien's company visit";
  Result<carnet::Transaction> tx = s.Begin();
  if (!tx.ok()) return tx.status();
  CARNET_RETURN_IF_ERROR(Interview(*tx, cast.visit, cast.julien, "2025-03-14T11:00:00Z", "company",
                                   "job_search", "The bakery may hire him in April."));
  cast.employer = s.NewId();
  cast.names[cast.employer] = "Boulangerie Martin";
  CARNET_RETURN_IF_ERROR(tx->Put("employers", cast.employer,
                                 {{"name", "Boulangerie Martin"},
                                  {"commune", "Saint-Aubin"},
                                  {"sector", "bakery"},
                                  {"contact_name", "Mme Martin"},
                                  {"territory", kTerritory}}));
  cast.company_visit = s.NewId();
  cast.names[cast.company_visit] = "Amina's visit to the bakery";
  CARNET_RETURN_IF_ERROR(tx->Put("company_visits", cast.company_visit,
                                 {{"employer", cast.employer},
                                  {"adviser", "amina"},
                                  {"date", "2025-03-14"},
                                  {"purpose", "placement"},
                                  {"territory", kTerritory}}));
  CARNET_RETURN_IF_ERROR(tx->Add("company_visits", cast.company_visit, "participants", cast.julien));
  CARNET_RETURN_IF_ERROR(tx->Commit());
  std::printf("tablet-amina: a new interview, Julien's company visit; the employer, Boulangerie "
              "Martin, and the visit, Julien's profile proposed\n");
  return Status::Ok();
}

Status BrunoOffline(carnet::Store& s, const Cast& cast) {
  CARNET_RETURN_IF_ERROR(s.Set("participants", cast.nadia, "phase", "job_search"));
  std::printf("tablet-bruno: Nadia's phase -> job_search\n");
  CARNET_RETURN_IF_ERROR(
      s.Set("attendance", carnet::AttendanceId(cast.workshop, cast.nadia), "status", "present"));
  CARNET_RETURN_IF_ERROR(s.Remove("workshops", cast.workshop, "registered", cast.julien));
  CARNET_RETURN_IF_ERROR(
      s.Set("attendance", carnet::AttendanceId(cast.workshop, cast.julien), "status", "excused"));
  std::printf("tablet-bruno: Nadia present at the workshop; Julien unregistered, excused\n");
  CARNET_RETURN_IF_ERROR(s.Append("interviews", cast.interview, "notes",
                                  "Phoned: she wants to postpone the driving test.")
                             .status());
  CARNET_RETURN_IF_ERROR(s.Delete("interviews", cast.interview));
  std::printf("tablet-bruno: a note on Nadia's interview, then deletes the interview\n");
  return Status::Ok();
}

Status ChloeOffline(carnet::Store& s, const Cast& cast) {
  CARNET_RETURN_IF_ERROR(
      s.Set("attendance", carnet::AttendanceId(cast.workshop, cast.nadia), "status", "absent"));
  std::printf("tablet-chloe: Nadia absent from the workshop\n");
  Result<carnet::Transaction> tx = s.Begin();
  if (!tx.ok()) return tx.status();
  CARNET_RETURN_IF_ERROR(Register(*tx, cast, cast.sophie, "present"));
  CARNET_RETURN_IF_ERROR(tx->Commit());
  std::printf("tablet-chloe: Sophie registered on the spot, present\n");
  return Status::Ok();
}

// Amina's evening sync, cut once: the server process is killed (SIGKILL) as soon as the server
// has acknowledged the first batch, then restarted on the same store and port.
Status CutSync(Tablet& amina, ServerProcess& server) {
  bool cut = false;
  amina.client->OnProgress([&](const carnet::SyncProgress& p) {
    amina.progress = p;
    if (!cut && p.pushed > 0) {
      cut = true;
      server.Kill();
    }
  });
  amina.progress = {};
  Status first = amina.client->SyncNow();
  amina.client->OnProgress([&amina](const carnet::SyncProgress& p) { amina.progress = p; });
  carnet::SyncStatus status = amina.client->status();
  std::printf("%s: %" PRIu64
              " operations to push in batches of 3; server killed (SIGKILL) "
              "after the first batch\n",
              amina.device.c_str(), amina.progress.push_total);
  if (!cut || first.ok() || status.state != carnet::SyncState::kOffline) {
    return carnet::Internal("the cut sync should have failed as offline, got " + first.ToString() +
                            ", state " + carnet::SyncStateName(status.state));
  }
  std::printf("%s: sync failed, state %s (%s); %" PRIu64 " acknowledged, %" PRIu64
              " still in the outbox\n",
              amina.device.c_str(), carnet::SyncStateName(status.state),
              carnet::StatusCodeName(first.code()), amina.progress.pushed, status.pending);
  const int port = server.port();
  Status started = server.Start(port);
  // The port was just released by a killed process; give the kernel a moment if it insists.
  for (int attempt = 1; !started.ok() && attempt < 20; ++attempt) {
    usleep(250'000);
    started = server.Start(port);
  }
  if (!started.ok()) return started;
  std::printf("carnet-server restarted on the same store and port %d\n", server.port());
  return Sync(amina);
}

Status Run(const std::string& binary, const std::string& dir, bool* equal) {
  carnet::PosixEnv env({carnet::LogLevel::kError, ""});
  const std::string store_spec = "sqlite:" + dir + "/server.db";
  const std::string log = dir + "/server.log";
  Tablet amina, bruno, chloe;
  amina.device = "tablet-amina", amina.adviser = "amina";
  bruno.device = "tablet-bruno", bruno.adviser = "bruno";
  chloe.device = "tablet-chloe", chloe.adviser = "chloe";
  std::vector<Tablet*> tablets = {&amina, &bruno, &chloe};
  Cast cast;

  std::printf("== Setting up (folder %s)\n", dir.c_str());
  for (Tablet* t : tablets) CARNET_RETURN_IF_ERROR(Enroll(binary, store_spec, log, *t));
  Result<Tls> tls = MakeCertificates(dir, log);
  if (!tls.ok()) return tls.status();
  ServerProcess server(binary, store_spec, log,
                       {"--tls-cert", tls->cert_file, "--tls-key", tls->key_file});
  CARNET_RETURN_IF_ERROR(server.Start(0));
  std::printf("carnet-server listening on https://127.0.0.1:%d, store %s\n", server.port(),
              store_spec.c_str());
  CARNET_RETURN_IF_ERROR(CheckUntrustedRefused(server.port()));
  for (Tablet* t : tablets) {
    CARNET_RETURN_IF_ERROR(OpenTablet(&env, dir, server.port(), *tls, *t));
  }

  std::printf("== Morning, online\n");
  CARNET_RETURN_IF_ERROR(Morning(amina, cast));
  for (Tablet* t : tablets) CARNET_RETURN_IF_ERROR(Sync(*t));

  std::printf("== During the day, offline\n");
  CARNET_RETURN_IF_ERROR(AminaOffline(*amina.store, cast));
  CARNET_RETURN_IF_ERROR(BrunoOffline(*bruno.store, cast));
  CARNET_RETURN_IF_ERROR(ChloeOffline(*chloe.store, cast));

  std::printf("== Evening, back online\n");
  CARNET_RETURN_IF_ERROR(CutSync(amina, server));
  CARNET_RETURN_IF_ERROR(Sync(bruno));
  CARNET_RETURN_IF_ERROR(Sync(chloe));
  for (int round = 0; round < 2; ++round) {
    for (Tablet* t : tablets) CARNET_RETURN_IF_ERROR(Sync(*t));
  }

  *equal = Report(tablets, cast, binary, store_spec, log);
  // Closes the tablets' keep-alive connections, which the server would wait for when stopping.
  for (Tablet* t : tablets) t->client.reset();
  Status stopped = server.Stop();
  if (stopped.ok()) std::printf("carnet-server stopped\n");
  return stopped;
}

}  // namespace
}  // namespace field_day

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--server-binary") {
    std::fprintf(stderr, "usage: field_day --server-binary PATH/carnet-server\n");
    return 2;
  }
  if (access(argv[2], X_OK) != 0) {
    std::fprintf(stderr, "field_day: no carnet-server executable at '%s'\n", argv[2]);
    return 2;
  }
  std::string pattern =
      std::filesystem::temp_directory_path().string() + "/carnet-field-day-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("field_day: mkdtemp");
    return 1;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  bool equal = false;
  carnet::Status status = field_day::Run(argv[2], pattern, &equal);
  if (!status.ok()) std::printf("FAILED: %s\n", status.ToString().c_str());
  if (!status.ok() || !equal) {
    std::printf("stores and server.log kept in %s\n", pattern.c_str());
    return 1;
  }
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  return 0;
}
