/*
 * persona-engine from C, as a service uses it: one pe_engine shared by worker threads
 * that select and record while another thread publishes new catalog versions; a persona
 * model that scores people from their signals; a decision log; statistics saved,
 * exported as a delta and merged into a second engine.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c11 -Wall -Wextra -Wpedantic -Werror -pthread -Iinclude examples/c/service.c \
 *      -Ltarget/release -l:libpersona_engine.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc \
 *      -o service
 *   ./service data/sample_catalog.json /tmp/decisions.jsonl [requests per worker]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persona_engine.h"

#define STR(s) (s), strlen(s)
#define WORKERS 4
#define PUBLISHES 3
#define NOW 1795464000

/* Prints the status and the last error of this thread, and exits: a service would log
 * it and answer with its fallback instead. */
static void fail(const char *what, pe_status status) {
    char message[512];
    size_t len = 0;
    pe_last_error_message(message, sizeof message, &len);
    fprintf(stderr, "%s: %s: %s\n", what, pe_status_name(status), message);
    exit(1);
}

#define CHECK(call)                                                                         \
    do {                                                                                    \
        pe_status check_status_ = (call);                                                   \
        if (check_status_ != PE_STATUS_OK) fail(#call, check_status_);                      \
    } while (0)

/* A persona model as training writes it: per persona, a bias and weights over signals. */
static const char MODEL[] =
    "{\"half_life_days\": 30, \"personas\": {"
    "\"Luxury Travel\": {\"bias\": -2.0, \"weights\": {\"viewed_5star\": 1.5}},"
    "\"Foodie\": {\"bias\": -2.0, \"weights\": {\"viewed_recipes\": 1.5}}}}";

struct shared {
    pe_engine *engine;
    const char *catalog_path;
    int requests;
};

struct worker {
    struct shared *shared;
    int index;
    unsigned long served;
    unsigned long clicks;
    unsigned long newest_generation;
};

/* One worker: its own profile and selection; every request selects through the engine's
 * current version and records the impression (and every 7th a click) through it. */
static void *work(void *arg) {
    struct worker *w = (struct worker *)arg;
    pe_engine *engine = w->shared->engine;
    pe_selector *first = NULL;
    pe_profile *person = NULL;
    pe_selection *picks = NULL;
    pe_context moment = PE_CONTEXT_INIT;
    int i;

    CHECK(pe_engine_current(engine, &first));
    CHECK(pe_profile_new(first, NOW - 400 * 86400, &person));
    CHECK(pe_profile_set_relationship(person, NOW - 400 * 86400, 48));
    CHECK(pe_profile_set_consent_mask(person, PE_DATA_CLASSES_ALL));
    CHECK(pe_profile_set_score(person, STR(w->index % 2 ? "Luxury Travel" : "Foodie"), 9,
                               1u << PE_DATA_CLASS_BEHAVIORAL));
    CHECK(pe_selection_new(first, 3, &picks));
    pe_selector_free(first); /* the profile and the selection keep what they need */

    moment.device = PE_DEVICE_MOBILE;
    for (i = 0; i < w->shared->requests; i++) {
        pe_selector *version = NULL;
        uint32_t creative = 0;
        size_t count = 0;
        uint64_t generation = 0;
        moment.at = NOW + i;
        CHECK(pe_engine_select(engine, person, &moment, STR("sidebar"), picks, &version));
        CHECK(pe_selection_count(picks, &count));
        if (count > 0) {
            CHECK(pe_selection_creative(picks, 0, &creative));
            CHECK(pe_record(version, person, &moment, creative, PE_FEEDBACK_KIND_IMPRESSION, 0.0));
            w->served++;
            if (i % 7 == 0) {
                CHECK(pe_record(version, person, &moment, creative, PE_FEEDBACK_KIND_CLICK, 0.0));
                w->clicks++;
            }
        }
        CHECK(pe_engine_generation(engine, &generation));
        if (generation > w->newest_generation) w->newest_generation = (unsigned long)generation;
        pe_selector_free(version);
    }
    pe_selection_free(picks);
    pe_profile_free(person);
    return NULL;
}

/* The publisher: new versions of the catalog while the workers run. */
static void *publish(void *arg) {
    struct shared *shared = (struct shared *)arg;
    int i;
    for (i = 0; i < PUBLISHES; i++) {
        uint64_t generation = 0;
        CHECK(pe_engine_publish_file(shared->engine, STR(shared->catalog_path), NULL, 0, &generation));
    }
    return NULL;
}

/* Copies a saved statistics snapshot into a new malloc'd string (length query first). */
static char *save_stats(const pe_engine *engine) {
    size_t len = 0;
    char *json;
    pe_status status = pe_engine_stats_save(engine, NULL, 0, &len);
    if (status != PE_STATUS_BUFFER_TOO_SMALL) fail("pe_engine_stats_save (length)", status);
    json = (char *)malloc(len + 1);
    if (json == NULL) exit(1);
    CHECK(pe_engine_stats_save(engine, json, len + 1, &len));
    return json;
}

/* Whether two snapshots hold the same counts per creative: the documents agree up to
 * their "model" field (the learned weights, which follow the counts). */
static int same_counts(const char *a, const char *b) {
    const char *end_a = strstr(a, "\"model\"");
    const char *end_b = strstr(b, "\"model\"");
    size_t len_a = end_a ? (size_t)(end_a - a) : strlen(a);
    size_t len_b = end_b ? (size_t)(end_b - b) : strlen(b);
    return len_a == len_b && memcmp(a, b, len_a) == 0;
}

/* Persona model and decision log: one person scored from signals, one logged decision. */
static void model_and_log(pe_engine *engine, const char *log_path) {
    pe_selector *current = NULL;
    pe_persona_model *model = NULL;
    pe_profile *person = NULL;
    pe_selection *picks = NULL;
    pe_decision_log *log = NULL;
    pe_context moment = PE_CONTEXT_INIT;
    uint16_t hero = 0;
    uint64_t decision = 0;
    uint32_t creative = 0;
    size_t count = 0, len = 0;
    char id[256], persona[128];
    uint16_t top = 0;
    uint8_t score = 0;

    CHECK(pe_engine_current(engine, &current));
    CHECK(pe_persona_model_new_from_json(current, STR(MODEL), &model));
    CHECK(pe_profile_new(current, NOW - 30 * 86400, &person));
    CHECK(pe_profile_set_consent_mask(person, PE_DATA_CLASSES_ALL));
    CHECK(pe_profile_add_signal(person, STR("viewed_5star"), 4.0f, PE_DATA_CLASS_BEHAVIORAL, NOW - 3600));
    CHECK(pe_persona_model_apply(model, person, NOW));

    moment.at = NOW;
    moment.device = PE_DEVICE_DESKTOP;
    CHECK(pe_selector_placement(current, STR("home_hero"), &hero));
    CHECK(pe_selection_new(current, 3, &picks));
    CHECK(pe_select(current, person, &moment, hero, picks));
    CHECK(pe_selection_count(picks, &count));
    if (count == 0) fail("the model-scored person got no pick", PE_STATUS_OK);
    CHECK(pe_selection_creative(picks, 0, &creative));
    CHECK(pe_selector_creative_id(current, creative, id, sizeof id, &len));
    CHECK(pe_selection_reason_persona(picks, 0, &top, &score));
    if (top == PE_PERSONA_NONE) {
        strcpy(persona, "-");
    } else {
        CHECK(pe_selector_persona_name(current, top, persona, sizeof persona, &len));
    }
    printf("model-scored person: %s (persona %s, score %u)\n", id, persona, (unsigned)score);

    CHECK(pe_decision_log_open(STR(log_path), 0, &log));
    CHECK(pe_decision_log_decision(log, current, person, &moment, hero, picks, STR("person-1"),
                                   PE_ARM_NONE, &decision));
    CHECK(pe_decision_log_outcome(log, current, decision, creative, PE_FEEDBACK_KIND_IMPRESSION, 0.0));
    CHECK(pe_decision_log_outcome(log, current, decision, creative, PE_FEEDBACK_KIND_CLICK, 0.0));
    CHECK(pe_record(current, person, &moment, creative, PE_FEEDBACK_KIND_IMPRESSION, 0.0));
    CHECK(pe_decision_log_close(log));
    printf("decision log: decision %llu with its click written to the log\n", (unsigned long long)decision);

    pe_selection_free(picks);
    pe_profile_free(person);
    pe_persona_model_free(model);
    pe_selector_free(current);
}

int main(int argc, char **argv) {
    const char *catalog_path = argc > 1 ? argv[1] : "data/sample_catalog.json";
    const char *log_path = argc > 2 ? argv[2] : "decisions.jsonl";
    struct shared shared;
    struct worker workers[WORKERS];
    pthread_t threads[WORKERS], publisher;
    unsigned long served = 0, clicks = 0;
    uint64_t generation = 0;
    pe_engine *other = NULL;
    pe_stats_blob *delta = NULL;
    pe_selector *refused = NULL;
    char *mine, *theirs, *delta_json;
    size_t len = 0;
    pe_status status;
    int i;

    shared.catalog_path = catalog_path;
    shared.requests = argc > 3 ? atoi(argv[3]) : 150;
    shared.engine = NULL;
    CHECK(pe_engine_new_from_file(STR(catalog_path), NULL, 0, &shared.engine));

    for (i = 0; i < WORKERS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].shared = &shared;
        workers[i].index = i;
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) return 1;
    }
    if (pthread_create(&publisher, NULL, publish, &shared) != 0) return 1;
    pthread_join(publisher, NULL);
    for (i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        served += workers[i].served;
        clicks += workers[i].clicks;
    }
    CHECK(pe_engine_generation(shared.engine, &generation));
    printf("workers: %d threads served %lu picks and recorded %lu clicks\n", WORKERS, served, clicks);
    printf("published: generation %llu after %d publishes under load\n", (unsigned long long)generation,
           PUBLISHES);

    /* A broken catalog is refused and the engine keeps serving the version it had. */
    status = pe_engine_publish_json(shared.engine, STR("{\"version\": "), NULL, 0, &generation);
    {
        char message[256];
        pe_last_error_message(message, sizeof message, &len);
        printf("broken catalog: %s: %s\n", pe_status_name(status), message);
    }
    CHECK(pe_engine_current(shared.engine, &refused));
    status = pe_selector_stats_save(refused, NULL, 0, &len);
    printf("selector stats on an engine version: %s\n", pe_status_name(status));
    pe_selector_free(refused);

    model_and_log(shared.engine, log_path);

    /* Statistics: a snapshot, and a delta merged into a second engine. */
    mine = save_stats(shared.engine);
    CHECK(pe_engine_stats_export_delta(shared.engine, &delta));
    CHECK(pe_stats_blob_json(delta, NULL, 0, &len) == PE_STATUS_BUFFER_TOO_SMALL ? PE_STATUS_OK
                                                                                 : PE_STATUS_INVALID_ARGUMENT);
    delta_json = (char *)malloc(len + 1);
    if (delta_json == NULL) return 1;
    CHECK(pe_stats_blob_json(delta, delta_json, len + 1, &len));
    CHECK(pe_engine_new_from_file(STR(catalog_path), NULL, 0, &other));
    CHECK(pe_engine_stats_merge(other, delta_json, len));
    theirs = save_stats(other);
    printf("statistics snapshot: %zu bytes; delta: %zu bytes\n", strlen(mine), len);
    printf("second engine after merging the delta: %s counts per creative\n",
           same_counts(mine, theirs) ? "same" : "different");

    free(theirs);
    free(delta_json);
    free(mine);
    pe_stats_blob_free(delta);
    pe_engine_free(other);
    pe_engine_free(shared.engine);
    return 0;
}
