/*
 * The quickstart, from C: very different people arrive at Wanderly's home page, app and
 * inbox; the engine shows what each is shown and why. The same story as
 * examples/quickstart.rs, through include/persona_engine.h. Then one of them reacts
 * (a click, a thumbs-down) and the engine obeys and learns; the learned statistics are
 * saved and shared with a second instance as a delta.
 *
 * Build and run (from the repository root):
 *
 *   cargo build --release
 *   cc -std=c11 -pedantic -Wall -Wextra -Werror -Iinclude examples/c/quickstart.c \
 *      target/release/libpersona_engine.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc \
 *      -o quickstart
 *   ./quickstart data/sample_catalog.json
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persona_engine.h"

/* Monday 2026-11-23, 20:00 UTC: the moment the sample data is set in. */
#define NOW ((int64_t)1795464000)
#define DAY ((int64_t)86400)
#define HOUR ((int64_t)3600)

#define CLASS(c) (1u << (c))

static const char *const PLACEMENTS[] = {"home_hero", "sidebar", "app_banner", "email_block"};
#define PLACEMENT_COUNT (sizeof PLACEMENTS / sizeof PLACEMENTS[0])

/* Prints the status and the thread's last error message. */
static void report(const char *what, pe_status status) {
    char message[512];
    size_t len = 0;
    pe_last_error_message(message, sizeof message, &len);
    printf("%s: %s: %s\n", what, pe_status_name(status), message);
}

/* Every call in the happy path must succeed; anything else ends the program. */
#define CHECK(call)                                                                        \
    do {                                                                                   \
        pe_status check_status_ = (call);                                                  \
        if (check_status_ != PE_STATUS_OK) {                                               \
            report(#call, check_status_);                                                  \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* (pointer, length) for a NUL-terminated C string. */
#define STR(s) (s), strlen(s)

struct score {
    const char *persona;
    unsigned score;
    uint32_t sources;
};

struct person {
    const char *name;
    int64_t first_seen;
    uint32_t visits;
    uint32_t consent;
    struct score scores[4];
    size_t score_count;
    const char *likes;    /* or NULL */
    const char *dislikes; /* or NULL */
    pe_context context;
};

static pe_profile *build_profile(const pe_selector *selector, const struct person *p) {
    pe_profile *profile = NULL;
    size_t i;
    CHECK(pe_profile_new(selector, p->first_seen, &profile));
    CHECK(pe_profile_set_relationship(profile, p->first_seen, p->visits));
    CHECK(pe_profile_set_consent_mask(profile, p->consent));
    for (i = 0; i < p->score_count; i++) {
        CHECK(pe_profile_set_score(profile, STR(p->scores[i].persona), p->scores[i].score,
                                   p->scores[i].sources));
    }
    if (p->likes != NULL) {
        CHECK(pe_profile_declare_like(profile, STR(p->likes)));
    }
    if (p->dislikes != NULL) {
        CHECK(pe_profile_declare_dislike(profile, STR(p->dislikes)));
    }
    return profile;
}

static const char *reason_kind_name(uint32_t kind) {
    switch (kind) {
    case PE_REASON_KIND_PERSONA_MATCH:
        return "persona_match";
    case PE_REASON_KIND_PRIORITY:
        return "priority";
    case PE_REASON_KIND_FALLBACK:
        return "fallback";
    case PE_REASON_KIND_LEARNED:
        return "learned";
    case PE_REASON_KIND_EXPLORING:
        return "exploring";
    default:
        return "other";
    }
}

/* Prints one row per pick: placement, creative id, score, reason kind, persona, why. */
static void print_picks(const pe_selector *selector, const pe_selection *selection,
                        const char *placement) {
    size_t count = 0, i;
    CHECK(pe_selection_count(selection, &count));
    if (count == 0) {
        printf("   %-12s (nothing eligible and no fallback)\n", placement);
    }
    for (i = 0; i < count; i++) {
        uint32_t creative = 0, kind = 0;
        float score = 0.0f;
        uint16_t persona = 0;
        uint8_t persona_score = 0;
        char id[256], persona_name[128], why[512];
        size_t len = 0;
        CHECK(pe_selection_creative(selection, i, &creative));
        CHECK(pe_selection_score(selection, i, &score));
        CHECK(pe_selection_reason_kind(selection, i, &kind));
        CHECK(pe_selection_reason_persona(selection, i, &persona, &persona_score));
        CHECK(pe_selector_creative_id(selector, creative, id, sizeof id, &len));
        if (persona == PE_PERSONA_NONE) {
            strcpy(persona_name, "-");
        } else {
            CHECK(pe_selector_persona_name(selector, persona, persona_name, sizeof persona_name,
                                           &len));
        }
        CHECK(pe_selector_explain(selector, selection, i, why, sizeof why, &len));
        printf("   %-12s %-34s %6.3f  %-13s %-20s %s\n", placement, id, (double)score,
               reason_kind_name(kind), persona_name, why);
    }
}

/* Copies the creative id of a creative index into `id` (of `cap` bytes). */
static void creative_name(const pe_selector *selector, uint32_t creative, char *id, size_t cap) {
    size_t len = 0;
    CHECK(pe_selector_creative_id(selector, creative, id, cap, &len));
}

/*
 * Feedback: the person is shown the picks (record the impressions too: click rates are
 * clicks over impressions), clicks the first and gives the second a thumbs-down. The
 * thumbs-down is obeyed from the very next pick.
 */
static void show_feedback(const pe_selector *selector, pe_profile *profile,
                          const pe_context *context, uint16_t placement, const char *name,
                          pe_selection *selection) {
    size_t count = 0, i;
    uint32_t clicked = 0, rejected = 0;
    char clicked_id[256], rejected_id[256];

    CHECK(pe_select(selector, profile, context, placement, selection));
    CHECK(pe_selection_count(selection, &count));
    if (count < 2) {
        printf("unexpected: fewer than two picks to react to\n");
        return;
    }
    for (i = 0; i < count; i++) {
        uint32_t creative = 0;
        CHECK(pe_selection_creative(selection, i, &creative));
        CHECK(pe_record(selector, profile, context, creative, PE_FEEDBACK_KIND_IMPRESSION, 0.0));
    }
    CHECK(pe_selection_creative(selection, 0, &clicked));
    CHECK(pe_selection_creative(selection, 1, &rejected));
    CHECK(pe_record(selector, profile, context, clicked, PE_FEEDBACK_KIND_CLICK, 0.0));
    CHECK(pe_record(selector, profile, context, rejected, PE_FEEDBACK_KIND_THUMBS_DOWN, 0.0));
    creative_name(selector, clicked, clicked_id, sizeof clicked_id);
    creative_name(selector, rejected, rejected_id, sizeof rejected_id);

    CHECK(pe_select(selector, profile, context, placement, selection));
    printf("== feedback: click on %s, thumbs-down on %s\n", clicked_id, rejected_id);
    print_picks(selector, selection, name);
    CHECK(pe_selection_count(selection, &count));
    for (i = 0; i < count; i++) {
        uint32_t creative = 0;
        CHECK(pe_selection_creative(selection, i, &creative));
        if (creative == rejected) {
            printf("unexpected: the thumbs-down creative was picked again\n");
        }
    }
    printf("\n");
}

/*
 * A full snapshot of the learned statistics, in a malloc'ed string the caller frees. The
 * statistics may grow between the length query and the copy while other threads
 * record, so this asks again (with room to spare) until the copy fits.
 */
static char *save_stats(const pe_selector *selector, size_t *len) {
    char *json = NULL;
    size_t cap = 0;
    pe_status status;
    while ((status = pe_selector_stats_save(selector, json, cap, len)) ==
           PE_STATUS_BUFFER_TOO_SMALL) {
        free(json);
        cap = *len + 1 + 1024;
        json = (char *)malloc(cap);
        if (json == NULL) {
            exit(1);
        }
    }
    if (status != PE_STATUS_OK) {
        report("pe_selector_stats_save", status);
        exit(1);
    }
    return json;
}

/*
 * Learned statistics travel as JSON: a full snapshot to save and load across restarts,
 * and deltas between instances. Exporting a delta moves the baseline, so the delta
 * comes as a blob that keeps it until it has been copied out.
 */
static void show_statistics(const char *catalog_path, const pe_selector *selector) {
    pe_selector *other = NULL;
    pe_stats_blob *blob = NULL;
    pe_stats_report merged;
    char *delta, *ours, *theirs;
    size_t delta_len = 0, ours_len = 0, theirs_len = 0;

    printf("== learned statistics\n");
    ours = save_stats(selector, &ours_len);
    printf("statistics snapshot: %zu bytes\n", ours_len);

    CHECK(pe_selector_stats_export_delta(selector, &blob));
    if (pe_stats_blob_json(blob, NULL, 0, &delta_len) != PE_STATUS_BUFFER_TOO_SMALL) {
        printf("unexpected: a length query did not report PE_STATUS_BUFFER_TOO_SMALL\n");
    }
    delta = (char *)malloc(delta_len + 1);
    if (delta == NULL) {
        exit(1);
    }
    CHECK(pe_stats_blob_json(blob, delta, delta_len + 1, &delta_len));
    pe_stats_blob_free(blob);
    printf("delta since the last export: %zu bytes\n", delta_len);

    /* Another instance (here: a second selector over the same catalog) merges it. */
    CHECK(pe_selector_new_from_file(STR(catalog_path), NULL, 0, &other));
    CHECK(pe_selector_stats_merge(other, delta, delta_len, &merged));
    /* What the other catalog could not hold is skipped: a plain selector cannot keep it. */
    printf("merged: %llu creatives; skipped: %llu unknown creatives, %llu segment cells, %llu model weights\n",
           (unsigned long long)merged.creatives, (unsigned long long)merged.unknown_creatives,
           (unsigned long long)merged.unknown_segments, (unsigned long long)merged.unknown_model_entries);
    theirs = save_stats(other, &theirs_len);
    printf("second instance after merging the delta: %s\n",
           strcmp(ours, theirs) == 0 ? "same statistics" : "DIFFERENT statistics");
    printf("\n");
    free(theirs);
    free(ours);
    free(delta);
    pe_selector_free(other);
}

/* The error paths: each prints the status it got and the message. */
static void show_errors(const char *catalog_path, const pe_selector *selector,
                        pe_profile *profile, pe_selection *selection) {
    uint16_t placement = 0;
    pe_selector *broken = NULL;
    pe_context bad = PE_CONTEXT_INIT;
    pe_stats_report loaded;
    char tiny[4];
    size_t len = 0;
    static const char not_utf8[] = {'F', 'o', (char)0xff, 'd', '\0'};

    printf("== error handling (each call fails with a status, never a crash)\n");
    report("unknown placement", pe_selector_placement(selector, STR("home_heroo"), &placement));
    report("bad catalog JSON",
           pe_selector_new_from_json(STR("{\"version\": "), NULL, 0, &broken));
    report("bad selector config",
           pe_selector_new_from_file(STR(catalog_path), STR("{\"threshold\": 12}"), &broken));
    report("missing catalog file",
           pe_selector_new_from_file(STR("/nonexistent/catalog.json"), NULL, 0, &broken));
    bad.at = NOW;
    bad.device = 42;
    report("device 42", pe_select(selector, profile, &bad, 0, selection));
    bad.device = PE_DEVICE_DESKTOP;
    report("small buffer", pe_selector_creative_id(selector, 0, tiny, sizeof tiny, &len));
    printf("   (the id needs %zu bytes plus the NUL)\n", len);
    report("NULL selector", pe_selection_new(NULL, 3, &selection));
    report("invalid UTF-8", pe_selector_placement(selector, STR(not_utf8), &placement));
    report("feedback kind 9", pe_record(selector, profile, &bad, 0, 9, 0.0));
    report("corrupt statistics", pe_selector_stats_load(selector, STR("{\"format\": "), &loaded));
    if (broken != NULL) {
        printf("unexpected: a broken selector was created\n");
        pe_selector_free(broken);
    }
}

int main(int argc, char **argv) {
    const char *catalog_path = argc > 1 ? argv[1] : "data/sample_catalog.json";
    pe_selector *selector = NULL;
    pe_selection *selection = NULL;
    pe_profile *profiles[5];
    uint16_t placements[PLACEMENT_COUNT];
    static const pe_attribute platinum[] = {{"loyalty_tier", 12, "platinum", 8}};
    const uint32_t behavioral = CLASS(PE_DATA_CLASS_BEHAVIORAL);
    const uint32_t purchase = CLASS(PE_DATA_CLASS_PURCHASE);
    const uint32_t third_party = CLASS(PE_DATA_CLASS_THIRD_PARTY);
    struct person people[5];
    size_t p, i;

    memset(people, 0, sizeof people);
    people[0] = (struct person){
        "luxury traveller, desktop, evening",
        NOW - 400 * DAY,
        48,
        PE_DATA_CLASSES_ALL,
        {{"Luxury Travel", 9, behavioral | purchase},
         {"Wellness & Spa", 8, behavioral | purchase},
         {"Beach Lover", 7, behavioral},
         {"Budget Traveller", 1, behavioral | purchase}},
        4,
        NULL,
        NULL,
        {NOW, 60, PE_DEVICE_DESKTOP, PE_CHANNEL_WEB, PE_WEATHER_RAIN, 0, "FR", 2, platinum, 1}};
    people[1] = (struct person){
        "parent, mobile, lunchtime",
        NOW - 60 * DAY,
        9,
        behavioral | purchase | CLASS(PE_DATA_CLASS_LOCATION),
        {{"Family Activities", 9, behavioral | purchase},
         {"Budget Traveller", 7, purchase},
         {"Beach Lover", 6, behavioral},
         {NULL, 0, 0}},
        3,
        NULL,
        NULL,
        {NOW - 8 * HOUR, 0, PE_DEVICE_MOBILE, PE_CHANNEL_APP, PE_WEATHER_CLOUDY, 0, "GB", 2, NULL,
         0}};
    /* Scores from third-party data, and no consent at all: none of them may be used. */
    people[2] = (struct person){
        "first visit, no consent",
        NOW,
        1,
        PE_DATA_CLASSES_NONE,
        {{"Adventure Seeker", 9, third_party},
         {"Early Adopter", 8, third_party},
         {NULL, 0, 0},
         {NULL, 0, 0}},
        2,
        NULL,
        NULL,
        {NOW, 0, PE_DEVICE_MOBILE, PE_CHANNEL_WEB, PE_WEATHER_UNKNOWN, 0, "DE", 2, NULL, 0}};
    /* Our model thinks they love luxury; they told us they do not. */
    people[3] = (struct person){
        "city-breaker who dislikes luxury",
        NOW - 20 * DAY,
        4,
        PE_DATA_CLASSES_ALL,
        {{"Luxury Travel", 9, behavioral},
         {"City Breaks", 8, behavioral},
         {"Foodie", 7, behavioral},
         {NULL, 0, 0}},
        3,
        "Eco Conscious",
        "Luxury Travel",
        {NOW - 3 * HOUR, 0, PE_DEVICE_TABLET, PE_CHANNEL_WEB, PE_WEATHER_UNKNOWN, 0, "NL", 2, NULL,
         0}};
    people[4] = (struct person){
        "security-minded early adopter",
        NOW - 30 * DAY,
        6,
        behavioral | CLASS(PE_DATA_CLASS_DECLARED),
        {{"Security Conscious", 9, CLASS(PE_DATA_CLASS_DECLARED)},
         {"Early Adopter", 8, behavioral},
         {"Business Traveller", 7, purchase},
         {NULL, 0, 0}},
        3,
        NULL,
        NULL,
        {NOW + 12 * HOUR, -300, PE_DEVICE_MOBILE, PE_CHANNEL_APP, PE_WEATHER_SNOW, 0, "US", 2,
         NULL, 0}};

    printf("persona-engine %s\n", pe_version());
    CHECK(pe_selector_new_from_file(STR(catalog_path), NULL, 0, &selector));
    for (i = 0; i < PLACEMENT_COUNT; i++) {
        CHECK(pe_selector_placement(selector, STR(PLACEMENTS[i]), &placements[i]));
    }
    CHECK(pe_selection_new(selector, 3, &selection));
    printf("loaded %s\n\n", catalog_path);

    for (p = 0; p < 5; p++) {
        profiles[p] = build_profile(selector, &people[p]);
        printf("== %s\n", people[p].name);
        printf("   %-12s %-34s %6s  %-13s %-20s %s\n", "placement", "creative", "score", "kind",
               "persona", "why");
        for (i = 0; i < PLACEMENT_COUNT; i++) {
            CHECK(pe_select(selector, profiles[p], &people[p].context, placements[i], selection));
            print_picks(selector, selection, PLACEMENTS[i]);
        }
        printf("\n");
    }

    /* Profiles travel as JSON: save the luxury traveller, load it back, same picks. */
    {
        size_t len = 0;
        char *json;
        pe_profile *reloaded = NULL;
        if (pe_profile_to_json(profiles[0], NULL, 0, &len) != PE_STATUS_BUFFER_TOO_SMALL) {
            printf("expected PE_STATUS_BUFFER_TOO_SMALL for a length query\n");
            return 1;
        }
        json = (char *)malloc(len + 1);
        if (json == NULL) {
            return 1;
        }
        CHECK(pe_profile_to_json(profiles[0], json, len + 1, &len));
        CHECK(pe_profile_new_from_json(selector, json, len, &reloaded));
        printf("== reloaded from %zu bytes of profile JSON\n", len);
        CHECK(pe_select(selector, reloaded, &people[0].context, placements[0], selection));
        print_picks(selector, selection, PLACEMENTS[0]);

        /* The hero is already on the page elsewhere: exclude it, ask again. */
        {
            uint32_t top = 0;
            CHECK(pe_selection_creative(selection, 0, &top));
            CHECK(pe_selection_exclude(selection, top));
            CHECK(pe_select(selector, reloaded, &people[0].context, placements[0], selection));
            printf("== without the first pick\n");
            print_picks(selector, selection, PLACEMENTS[0]);
            CHECK(pe_selection_clear_exclusions(selection));
        }
        printf("\n");
        pe_profile_free(reloaded);
        free(json);
    }

    show_feedback(selector, profiles[0], &people[0].context, placements[0], PLACEMENTS[0],
                  selection);
    show_statistics(catalog_path, selector);
    show_errors(catalog_path, selector, profiles[0], selection);

    for (p = 0; p < 5; p++) {
        pe_profile_free(profiles[p]);
    }
    pe_selection_free(selection);
    pe_selector_free(selector);
    pe_selector_free(NULL); /* a no-op, like free(NULL) */
    return 0;
}
