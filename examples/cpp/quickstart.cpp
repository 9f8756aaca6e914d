// A small C++17 client: RAII owners for the C handles, exceptions for statuses, and one
// selector and profile shared by several threads, each with its own selection.
//
// Build and run (from the repository root; the c++ command is one line):
//
//   cargo build --release
//   c++ -std=c++17 -Wall -Wextra -Werror -Iinclude examples/cpp/quickstart.cpp
//       target/release/libpersona_engine.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
//       -o quickstart_cpp
//   ./quickstart_cpp data/sample_catalog.json

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "persona_engine.h"

namespace pe {

// Thrown for any status other than PE_STATUS_OK, with the library's message.
class Error : public std::runtime_error {
  public:
    Error(pe_status status, const std::string &message)
        : std::runtime_error(std::string(pe_status_name(status)) + ": " + message),
          status_(status) {}
    pe_status status() const { return status_; }

  private:
    pe_status status_;
};

void check(pe_status status) {
    if (status == PE_STATUS_OK) {
        return;
    }
    std::string message(512, '\0');
    size_t len = 0;
    pe_last_error_message(message.data(), message.size(), &len);
    message.resize(len < message.size() ? len : message.size() - 1);
    throw Error(status, message);
}

// Reads a string through the (buf, cap, *out_len) convention: ask for the length, then copy.
template <typename F> std::string read_string(F &&fill) {
    size_t len = 0;
    pe_status status = fill(nullptr, 0, &len);
    if (status != PE_STATUS_BUFFER_TOO_SMALL) {
        check(status);
    }
    std::string out(len + 1, '\0');
    check(fill(out.data(), out.size(), &len));
    out.resize(len);
    return out;
}

struct SelectorFree {
    void operator()(pe_selector *s) const { pe_selector_free(s); }
};
struct ProfileFree {
    void operator()(pe_profile *p) const { pe_profile_free(p); }
};
struct SelectionFree {
    void operator()(pe_selection *s) const { pe_selection_free(s); }
};
using Selector = std::unique_ptr<pe_selector, SelectorFree>;
using Profile = std::unique_ptr<pe_profile, ProfileFree>;
using Selection = std::unique_ptr<pe_selection, SelectionFree>;

Selector selector_from_json(std::string_view json) {
    pe_selector *raw = nullptr;
    check(pe_selector_new_from_json(json.data(), json.size(), nullptr, 0, &raw));
    return Selector(raw);
}

Profile new_profile(const pe_selector *selector, int64_t now) {
    pe_profile *raw = nullptr;
    check(pe_profile_new(selector, now, &raw));
    return Profile(raw);
}

Selection new_selection(const pe_selector *selector, size_t k) {
    pe_selection *raw = nullptr;
    check(pe_selection_new(selector, k, &raw));
    return Selection(raw);
}

uint16_t placement(const pe_selector *selector, std::string_view name) {
    uint16_t id = 0;
    check(pe_selector_placement(selector, name.data(), name.size(), &id));
    return id;
}

std::string creative_id(const pe_selector *selector, uint32_t creative) {
    return read_string([&](char *buf, size_t cap, size_t *len) {
        return pe_selector_creative_id(selector, creative, buf, cap, len);
    });
}

} // namespace pe

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "data/sample_catalog.json";
    std::ifstream file(path);
    if (!file) {
        std::fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    std::stringstream text;
    text << file.rdbuf();

    try {
        const int64_t now = 1795464000; // Monday 2026-11-23, 20:00 UTC
        pe::Selector selector = pe::selector_from_json(text.str());

        // A loyal family traveller who consented to behavioural data.
        pe::Profile family = pe::new_profile(selector.get(), now - 200 * 86400);
        pe::check(pe_profile_set_relationship(family.get(), now - 200 * 86400, 30));
        pe::check(pe_profile_set_consent(family.get(), PE_DATA_CLASS_BEHAVIORAL, true));
        std::string_view persona = "Family Activities";
        pe::check(pe_profile_set_score(family.get(), persona.data(), persona.size(), 9,
                                       1u << PE_DATA_CLASS_BEHAVIORAL));

        pe_context moment = PE_CONTEXT_INIT;
        moment.at = now;
        moment.device = PE_DEVICE_MOBILE;
        moment.channel = PE_CHANNEL_APP;
        moment.region = "GB";
        moment.region_len = 2;

        // One selector and one profile, read by four threads at once; each thread owns
        // its selection.
        const std::vector<std::string> names = {"home_hero", "sidebar", "app_banner",
                                                "email_block"};
        std::vector<std::string> lines(names.size());
        std::vector<std::thread> threads;
        for (size_t t = 0; t < names.size(); t++) {
            threads.emplace_back([&, t] {
                pe::Selection picks = pe::new_selection(selector.get(), 2);
                uint16_t where = pe::placement(selector.get(), names[t]);
                pe::check(pe_select(selector.get(), family.get(), &moment, where, picks.get()));
                size_t count = 0;
                pe::check(pe_selection_count(picks.get(), &count));
                std::string line = names[t] + ":";
                for (size_t i = 0; i < count; i++) {
                    uint32_t creative = 0;
                    float score = 0;
                    pe::check(pe_selection_creative(picks.get(), i, &creative));
                    pe::check(pe_selection_score(picks.get(), i, &score));
                    char formatted[64];
                    std::snprintf(formatted, sizeof formatted, " %.3f", static_cast<double>(score));
                    line += " " + pe::creative_id(selector.get(), creative) + formatted;
                }
                lines[t] = line;
            });
        }
        for (auto &thread : threads) {
            thread.join();
        }
        for (const auto &line : lines) {
            std::printf("%s\n", line.c_str());
        }

        // The profile as JSON, read with the length-query convention.
        std::string json = pe::read_string([&](char *buf, size_t cap, size_t *len) {
            return pe_profile_to_json(family.get(), buf, cap, len);
        });
        std::printf("profile JSON: %zu bytes\n", json.size());

        // Errors arrive as exceptions carrying the status and the message.
        try {
            pe::placement(selector.get(), "nowhere");
        } catch (const pe::Error &e) {
            std::printf("caught %s\n", e.what());
        }
    } catch (const pe::Error &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
