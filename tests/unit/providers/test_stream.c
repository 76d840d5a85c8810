/* Streams: the incremental SSE parser's edge cases; captured-style SSE
 * transcripts of OpenAI, Anthropic and Gemini decoded into canonical events
 * whatever the chunking (1 byte, 7 bytes, random, whole); every transcript
 * re-encoded for every client API, checked for a valid event sequence and
 * decoded back to the same answer; the accumulator; truncation and errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/chat.h"
#include "cutover/error.h"

/* Fixtures are written with ' for " (\\' for an escaped quote inside JSON text). */
static char *q(const char *s)
{
    char *c = strdup(s);
    for (char *p = c; *p; p++)
        if (*p == '\'')
            *p = '"';
    return c;
}

/* ---- SSE parser ----------------------------------------------------------- */

static int sse_log(void *ctx, const co_sse_event *ev)
{
    co_buf *b = ctx;
    assert_int_equal(strlen(ev->data), ev->data_len);
    return co_buf_printf(b, "%s|%s|%s\n", ev->event, ev->data, ev->id);
}

static char *sse_all(const char *in, size_t n, size_t chunk, size_t max)
{
    co_sse_parser p;
    co_buf log;
    co_buf_init(&log, 1 << 20);
    co_sse_init(&p, max, sse_log, &log);
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        assert_int_equal(co_sse_feed(&p, in + off, k), 0);
    }
    assert_int_equal(co_sse_finish(&p), 0);
    co_sse_free(&p);
    return co_buf_detach(&log);
}

static void test_sse_basics(void **state)
{
    (void)state;
    const char *in = "\xEF\xBB\xBF: a comment (keep-alive)\n"
                     "event: first\ndata: one\n\n"
                     "data: a\ndata:b\ndata:  c\n\n"      /* multi-line; one leading space is stripped */
                     "event: lonely\n\n"                  /* no data: nothing, and the name resets */
                     "data: two\r\n\r\n"                  /* CRLF */
                     "id: 7\r"                            /* CR alone */
                     "retry: 100\rdata: three\r\r"
                     "data\n\n"                           /* a field name alone: empty data */
                     "unknown: x\ndata: {\"k\": \"v: w\"}\n\n"
                     "data: tail";                        /* no final blank line: dispatched at finish */
    const char *want = "first|one|\n"
                       "message|a\nb\n c|\n"
                       "message|two|\n"
                       "message|three|7\n"
                       "message||7\n"
                       "message|{\"k\": \"v: w\"}|7\n"
                       "message|tail|7\n";
    size_t n = strlen(in);
    char *whole = sse_all(in, n, n, 1024);
    assert_string_equal(whole, want);
    free(whole);
    /* every chunking gives the same events */
    for (size_t c = 1; c <= 9; c++) {
        char *got = sse_all(in, n, c, 1024);
        assert_string_equal(got, want);
        free(got);
    }
    /* and every single split point */
    for (size_t i = 0; i <= n; i++) {
        co_sse_parser p;
        co_buf log;
        co_buf_init(&log, 1 << 16);
        co_sse_init(&p, 1024, sse_log, &log);
        assert_int_equal(co_sse_feed(&p, in, i), 0);
        assert_int_equal(co_sse_feed(&p, in + i, n - i), 0);
        assert_int_equal(co_sse_finish(&p), 0);
        assert_string_equal(log.p, want);
        co_sse_free(&p);
        co_buf_free(&log);
    }
}

static void test_sse_crlf_split(void **state)
{
    (void)state;
    /* "\r" | "\n" must be one line end, not an empty line that dispatches */
    co_sse_parser p;
    co_buf log;
    co_buf_init(&log, 4096);
    co_sse_init(&p, 1024, sse_log, &log);
    assert_int_equal(co_sse_feed(&p, "data: 1\r", 8), 0);
    assert_int_equal(co_sse_feed(&p, "\n", 1), 0);
    assert_int_equal(co_sse_feed(&p, "data: 2\r", 8), 0);
    assert_int_equal(co_sse_feed(&p, "\n\r", 2), 0);
    assert_int_equal(co_sse_feed(&p, "\n", 1), 0);
    assert_string_equal(log.p, "message|1\n2|\n");
    co_sse_free(&p);
    co_buf_free(&log);
}

static int stop_at_second(void *ctx, const co_sse_event *ev)
{
    int *n = ctx;
    (void)ev;
    return ++*n == 2 ? -42 : 0;
}

static void test_sse_limits(void **state)
{
    (void)state;
    co_sse_parser p;
    co_buf log;
    co_buf_init(&log, 4096);
    /* one line over the limit, even split in pieces */
    co_sse_init(&p, 32, sse_log, &log);
    assert_int_equal(co_sse_feed(&p, "data: 0123456789", 16), 0);
    assert_int_equal(co_sse_feed(&p, "0123456789", 10), 0);
    assert_int_equal(co_sse_feed(&p, "0123456789", 10), CO_ETOOBIG);
    assert_non_null(strstr(co_error_last(), "larger than 32 bytes"));
    assert_int_equal(co_sse_feed(&p, "\n\n", 2), CO_ETOOBIG); /* stays failed */
    assert_int_equal(co_sse_finish(&p), CO_ETOOBIG);
    co_sse_free(&p);
    /* many small data lines adding up */
    co_sse_init(&p, 32, sse_log, &log);
    assert_int_equal(co_sse_feed(&p, "data: 0123456789\ndata: 0123456789\n", 34), 0);
    assert_int_equal(co_sse_feed(&p, "data: 0123456789\n", 17), CO_ETOOBIG);
    co_sse_free(&p);
    /* the limit is per event: many events under it are fine */
    co_sse_init(&p, 32, sse_log, &log);
    for (int i = 0; i < 100; i++)
        assert_int_equal(co_sse_feed(&p, "data: 0123456789\n\n", 18), 0);
    co_sse_free(&p);
    co_buf_free(&log);
    /* a callback's non-zero return stops the parser */
    int n = 0;
    co_sse_init(&p, 1024, stop_at_second, &n);
    assert_int_equal(co_sse_feed(&p, "data: a\n\ndata: b\n\ndata: c\n\n", 27), -42);
    assert_int_equal(n, 2);
    co_sse_free(&p);
}

/* ---- canonical event logs ------------------------------------------------- */

static int ev_log(void *ctx, const co_chat_event *ev)
{
    co_buf *b = ctx;
    const co_chat_usage *u = &ev->usage;
    switch (ev->kind) {
    case CO_CHAT_EV_START:
        co_buf_printf(b, "start id=%s model=%s created=%lld", ev->id, ev->model, (long long)ev->created);
        if (u->known)
            co_buf_printf(b, " usage in=%lld out=%lld cached=%lld write=%lld", (long long)u->input_tokens,
                          (long long)u->output_tokens, (long long)u->cached_input_tokens, (long long)u->cache_write_tokens);
        return co_buf_puts(b, "\n");
    case CO_CHAT_EV_TEXT: return co_buf_printf(b, "text \"%.*s\"\n", (int)ev->len, ev->text);
    case CO_CHAT_EV_TOOL_START: return co_buf_printf(b, "tool_start %d %s %s\n", ev->index, ev->tool_id, ev->tool_name);
    case CO_CHAT_EV_TOOL_ARGS: return co_buf_printf(b, "tool_args %d %.*s\n", ev->index, (int)ev->len, ev->text);
    case CO_CHAT_EV_FINISH:
        co_buf_printf(b, "finish %s raw=%s", co_chat_finish_name(ev->finish), ev->finish_raw ? ev->finish_raw : "-");
        if (ev->stop_sequence)
            co_buf_printf(b, " seq=%s", ev->stop_sequence);
        return co_buf_puts(b, "\n");
    case CO_CHAT_EV_USAGE:
        return co_buf_printf(b, "usage in=%lld out=%lld cached=%lld write=%lld\n", (long long)u->input_tokens,
                             (long long)u->output_tokens, (long long)u->cached_input_tokens, (long long)u->cache_write_tokens);
    case CO_CHAT_EV_ERROR:
        return co_buf_printf(b, "error %s status=%d %s\n", co_chat_err_kind_name(ev->error->kind), ev->error->status,
                             ev->error->message);
    case CO_CHAT_EV_END: return co_buf_puts(b, "end\n");
    }
    return 0;
}

/* ---- transcripts ---------------------------------------------------------- */

#define OA_HEAD                                                                                                 \
    "data: {'id':'chatcmpl-B9MHD','object':'chat.completion.chunk','created':1741570283,'model':'gpt-4o-2024-08-06'," \
    "'service_tier':'default','system_fingerprint':'fp_eb9dce56a8','choices':"

static const char *OA_TEXT =
    OA_HEAD "[{'index':0,'delta':{'role':'assistant','content':'','refusal':null},'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
    OA_HEAD "[{'index':0,'delta':{'content':'Caf\xc3\xa9 \xe2\x98\x95'},'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
    OA_HEAD "[{'index':0,'delta':{'content':' is open'},'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
    OA_HEAD "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}],'usage':null}\n\n"
    OA_HEAD "[],'usage':{'prompt_tokens':19,'completion_tokens':10,'total_tokens':29,"
    "'prompt_tokens_details':{'cached_tokens':0,'audio_tokens':0},'completion_tokens_details':{'reasoning_tokens':0,"
    "'audio_tokens':0,'accepted_prediction_tokens':0,'rejected_prediction_tokens':0}}}\n\n"
    "data: [DONE]\n\n";

static const char *OA_TEXT_LOG =
    "start id=chatcmpl-B9MHD model=gpt-4o-2024-08-06 created=1741570283\n"
    "text \"Caf\xc3\xa9 \xe2\x98\x95\"\n"
    "text \" is open\"\n"
    "finish stop raw=stop\n"
    "usage in=19 out=10 cached=0 write=0\n"
    "end\n";

#define OT_HEAD "data: {'id':'chatcmpl-T7','object':'chat.completion.chunk','created':1741570300,'model':'gpt-4o-mini','choices':"

static const char *OA_TOOLS =
    OT_HEAD "[{'index':0,'delta':{'role':'assistant','content':null,'tool_calls':[{'index':0,'id':'call_Gx1','type':'function',"
    "'function':{'name':'get_weather','arguments':''}}],'refusal':null},'logprobs':null,'finish_reason':null}]}\n\n"
    ": keep-alive\n\n"
    OT_HEAD "[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':'{\\'loc'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
    OT_HEAD "[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':'ation\\': \\'Paris\\'}'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
    OT_HEAD "[{'index':0,'delta':{'tool_calls':[{'index':1,'id':'call_Hy2','type':'function','function':{'name':'get_time','arguments':''}}]},"
    "'logprobs':null,'finish_reason':null}]}\n\n"
    OT_HEAD "[{'index':0,'delta':{'tool_calls':[{'index':1,'function':{'arguments':'{\\'tz\\': \\'CET\\'}'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
    OT_HEAD "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'tool_calls'}]}\n\n"
    OT_HEAD "[],'usage':{'prompt_tokens':80,'completion_tokens':40,'total_tokens':120,'prompt_tokens_details':{'cached_tokens':64}}}\n\n"
    "data: [DONE]\n\n";

static const char *OA_TOOLS_LOG =
    "start id=chatcmpl-T7 model=gpt-4o-mini created=1741570300\n"
    "tool_start 0 call_Gx1 get_weather\n"
    "tool_args 0 {\"loc\n"
    "tool_args 0 ation\": \"Paris\"}\n"
    "tool_start 1 call_Hy2 get_time\n"
    "tool_args 1 {\"tz\": \"CET\"}\n"
    "finish tool_calls raw=tool_calls\n"
    "usage in=80 out=40 cached=64 write=0\n"
    "end\n";

static const char *OA_ERROR =
    OT_HEAD "[{'index':0,'delta':{'role':'assistant','content':'Hel'},'logprobs':null,'finish_reason':null}]}\n\n"
    "data: {'error':{'message':'The server had an error while processing your request.','type':'server_error','param':null,'code':null}}\n\n";

static const char *OA_ERROR_LOG =
    "start id=chatcmpl-T7 model=gpt-4o-mini created=1741570300\n"
    "text \"Hel\"\n"
    "error api_error status=0 The server had an error while processing your request.\n";

static const char *AN_TOOL =
    "event: message_start\n"
    "data: {'type':'message_start','message':{'id':'msg_01XF','type':'message','role':'assistant','model':'claude-sonnet-4-5-20250929',"
    "'content':[],'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':472,'cache_creation_input_tokens':0,"
    "'cache_read_input_tokens':128,'output_tokens':2,'service_tier':'standard'}}}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}\n\n"
    "event: ping\n"
    "data: {'type': 'ping'}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'Okay, let me check'}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':' the weather.'}}\n\n"
    "event: content_block_stop\n"
    "data: {'type':'content_block_stop','index':0}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':1,'content_block':{'type':'tool_use','id':'toolu_01T1','name':'get_weather','input':{}}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':''}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':'{\\'location\\':'}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':' \\'San Francisco, CA\\'}'}}\n\n"
    "event: content_block_stop\n"
    "data: {'type':'content_block_stop','index':1}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':2,'content_block':{'type':'tool_use','id':'toolu_01T2','name':'get_time','input':{}}}\n\n"
    "event: content_block_stop\n"
    "data: {'type':'content_block_stop','index':2}\n\n"
    "event: message_delta\n"
    "data: {'type':'message_delta','delta':{'stop_reason':'tool_use','stop_sequence':null},'usage':{'output_tokens':89}}\n\n"
    "event: message_stop\n"
    "data: {'type':'message_stop'}\n\n";

static const char *AN_TOOL_LOG =
    "start id=msg_01XF model=claude-sonnet-4-5-20250929 created=0 usage in=600 out=0 cached=128 write=0\n"
    "text \"Okay, let me check\"\n"
    "text \" the weather.\"\n"
    "tool_start 0 toolu_01T1 get_weather\n"
    "tool_args 0 {\"location\":\n"
    "tool_args 0  \"San Francisco, CA\"}\n"
    "tool_start 1 toolu_01T2 get_time\n"
    "finish tool_calls raw=tool_use\n"
    "usage in=600 out=89 cached=128 write=0\n"
    "end\n";

static const char *AN_THINK =
    "event: message_start\r\n"
    "data: {'type':'message_start','message':{'id':'msg_02','type':'message','role':'assistant','model':'claude-opus-4-1',"
    "'content':[],'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':20,'cache_creation_input_tokens':30,"
    "'cache_read_input_tokens':0,'output_tokens':1}}}\r\n\r\n"
    "event: content_block_start\r\n"
    "data: {'type':'content_block_start','index':0,'content_block':{'type':'thinking','thinking':''}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'thinking_delta','thinking':'The user wants'}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'signature_delta','signature':'EqQBCgIYAhIM'}}\r\n\r\n"
    "event: content_block_stop\r\n"
    "data: {'type':'content_block_stop','index':0}\r\n\r\n"
    "event: content_block_start\r\n"
    "data: {'type':'content_block_start','index':1,'content_block':{'type':'text','text':''}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {'type':'content_block_delta','index':1,'delta':{'type':'text_delta','text':'Answer: 42'}}\r\n\r\n"
    "event: content_block_stop\r\n"
    "data: {'type':'content_block_stop','index':1}\r\n\r\n"
    "event: message_delta\r\n"
    "data: {'type':'message_delta','delta':{'stop_reason':'stop_sequence','stop_sequence':'###'},"
    "'usage':{'input_tokens':20,'cache_creation_input_tokens':30,'cache_read_input_tokens':0,'output_tokens':15}}\r\n\r\n"
    "event: message_stop\r\n"
    "data: {'type':'message_stop'}\r\n\r\n";

static const char *AN_THINK_LOG =
    "start id=msg_02 model=claude-opus-4-1 created=0 usage in=50 out=0 cached=0 write=30\n"
    "text \"Answer: 42\"\n"
    "finish stop raw=stop_sequence seq=###\n"
    "usage in=50 out=15 cached=0 write=30\n"
    "end\n";

static const char *AN_ERROR =
    "event: message_start\n"
    "data: {'type':'message_start','message':{'id':'msg_03','type':'message','role':'assistant','model':'claude-haiku-4-5',"
    "'content':[],'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':5,'output_tokens':1}}}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'Hel'}}\n\n"
    "event: error\n"
    "data: {'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}\n\n";

static const char *AN_ERROR_LOG =
    "start id=msg_03 model=claude-haiku-4-5 created=0 usage in=5 out=0 cached=0 write=0\n"
    "text \"Hel\"\n"
    "error overloaded_error status=0 Overloaded\n";

static const char *GM_TEXT =
    "data: {'candidates': [{'content': {'parts': [{'text': 'The'}],'role': 'model'},'index': 0}],"
    "'usageMetadata': {'promptTokenCount': 9,'candidatesTokenCount': 1,'totalTokenCount': 10,"
    "'promptTokensDetails': [{'modality': 'TEXT','tokenCount': 9}]},'modelVersion': 'gemini-2.5-flash','responseId': 'mAitaLmk'}\r\n\r\n"
    "data: {'candidates': [{'content': {'parts': [{'text': ' sky is blue.'}],'role': 'model'},'finishReason': 'STOP','index': 0}],"
    "'usageMetadata': {'promptTokenCount': 9,'candidatesTokenCount': 12,'totalTokenCount': 41,'thoughtsTokenCount': 20},"
    "'modelVersion': 'gemini-2.5-flash','responseId': 'mAitaLmk'}\r\n\r\n";

static const char *GM_TEXT_LOG =
    "start id=mAitaLmk model=gemini-2.5-flash created=0\n"
    "text \"The\"\n"
    "text \" sky is blue.\"\n"
    "finish stop raw=STOP\n"
    "usage in=9 out=32 cached=0 write=0\n"
    "end\n";

static const char *GM_TOOL =
    "data: {'candidates': [{'content': {'parts': [{'text': 'Let me look.'}],'role': 'model'},'index': 0}],"
    "'usageMetadata': {'promptTokenCount': 50,'candidatesTokenCount': 3,'totalTokenCount': 53,'cachedContentTokenCount': 4},"
    "'modelVersion': 'gemini-2.5-pro','responseId': 'x1'}\r\n\r\n"
    "data: {'candidates': [{'content': {'parts': [{'functionCall': {'name': 'get_weather','args': {'location': 'Boston'}}},"
    "{'functionCall': {'name': 'get_time','args': {}}}],'role': 'model'},'finishReason': 'STOP','index': 0}],"
    "'usageMetadata': {'promptTokenCount': 50,'candidatesTokenCount': 8,'totalTokenCount': 58,'cachedContentTokenCount': 4},"
    "'modelVersion': 'gemini-2.5-pro','responseId': 'x1'}\r\n\r\n";

static const char *GM_TOOL_LOG =
    "start id=x1 model=gemini-2.5-pro created=0\n"
    "text \"Let me look.\"\n"
    "tool_start 0 call_x1_0 get_weather\n"
    "tool_args 0 {\"location\":\"Boston\"}\n"
    "tool_start 1 call_x1_1 get_time\n"
    "tool_args 1 {}\n"
    "finish tool_calls raw=STOP\n"
    "usage in=50 out=8 cached=4 write=0\n"
    "end\n";

typedef struct fixture {
    const char *name;
    co_api api;
    const char *sse;
    const char *log;
} fixture;

static const fixture FIXTURES[] = {
    {"openai text", CO_API_OPENAI, NULL, NULL},
    {"openai tools", CO_API_OPENAI, NULL, NULL},
    {"openai error", CO_API_OPENAI, NULL, NULL},
    {"anthropic tools", CO_API_ANTHROPIC, NULL, NULL},
    {"anthropic thinking", CO_API_ANTHROPIC, NULL, NULL},
    {"anthropic error", CO_API_ANTHROPIC, NULL, NULL},
    {"gemini text", CO_API_GEMINI, NULL, NULL},
    {"gemini tools", CO_API_GEMINI, NULL, NULL},
};
#define N_FIX (sizeof FIXTURES / sizeof *FIXTURES)

static fixture fix(size_t i)
{
    static const char **sse[N_FIX] = {&OA_TEXT, &OA_TOOLS, &OA_ERROR, &AN_TOOL, &AN_THINK, &AN_ERROR, &GM_TEXT, &GM_TOOL};
    static const char **log[N_FIX] = {&OA_TEXT_LOG, &OA_TOOLS_LOG, &OA_ERROR_LOG, &AN_TOOL_LOG,
                                      &AN_THINK_LOG, &AN_ERROR_LOG, &GM_TEXT_LOG, &GM_TOOL_LOG};
    fixture f = FIXTURES[i];
    f.sse = *sse[i];
    f.log = *log[i];
    return f;
}

/* Feeds bytes to a decoder of api in chunks (0 = random sizes from seed). */
static int decode(co_api api, const char *in, size_t n, size_t chunk, unsigned seed, co_chat_event_fn fn, void *ctx)
{
    co_chat_decoder *d = NULL;
    assert_int_equal(co_chat_decoder_new(&d, api, 1 << 16, fn, ctx), 0);
    int rc = 0;
    unsigned s = seed;
    for (size_t off = 0; off < n && !rc;) {
        size_t k = chunk;
        if (!k) {
            s = s * 1103515245u + 12345u;
            k = 1 + (s >> 16) % 64;
        }
        if (k > n - off)
            k = n - off;
        rc = co_chat_decoder_feed(d, in + off, k);
        off += k;
    }
    if (!rc)
        rc = co_chat_decoder_finish(d);
    co_chat_decoder_free(d);
    return rc;
}

static void test_decode_transcripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIX; i++) {
        fixture f = fix(i);
        char *in = q(f.sse);
        size_t n = strlen(in);
        size_t chunks[] = {n, 1, 7, 0, 0, 0};
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            co_buf log;
            co_buf_init(&log, 1 << 20);
            int rc = decode(f.api, in, n, chunks[c], (unsigned)(c * 7919 + i), ev_log, &log);
            if (rc)
                fail_msg("%s (chunk %zu): %s", f.name, chunks[c], co_error_last());
            if (strcmp(log.p, f.log))
                fail_msg("%s (chunk %zu):\nwant:\n%sgot:\n%s", f.name, chunks[c], f.log, log.p);
            co_buf_free(&log);
        }
        free(in);
    }
}

/* ---- validators for encoded streams --------------------------------------- */

typedef struct sse_list {
    char *name[256];
    json_t *data[256];
    int done[256]; /* data: [DONE] */
    size_t n;
} sse_list;

static int collect(void *ctx, const co_sse_event *ev)
{
    sse_list *l = ctx;
    assert_true(l->n < 256);
    l->name[l->n] = strdup(ev->event);
    l->done[l->n] = !strcmp(ev->data, "[DONE]");
    if (!l->done[l->n]) {
        json_error_t e;
        l->data[l->n] = json_loads(ev->data, 0, &e);
        if (!json_is_object(l->data[l->n]))
            fail_msg("encoded event %zu is not a JSON object: %s", l->n, ev->data);
    }
    l->n++;
    return 0;
}

static void collect_all(sse_list *l, const char *bytes, size_t n)
{
    co_sse_parser p;
    memset(l, 0, sizeof *l);
    co_sse_init(&p, 1 << 20, collect, l);
    assert_int_equal(co_sse_feed(&p, bytes, n), 0);
    assert_int_equal(co_sse_finish(&p), 0);
    co_sse_free(&p);
}

static void list_free(sse_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->name[i]);
        json_decref(l->data[i]);
    }
}

static const char *jstr(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void validate_openai(const char *bytes, size_t n, int include_usage, int errored)
{
    sse_list l;
    collect_all(&l, bytes, n);
    assert_true(l.n >= 1);
    int finishes = 0, usage_seen = 0;
    int started[16] = {0};
    for (size_t i = 0; i < l.n; i++) {
        if (l.done[i]) {
            assert_false(errored);
            assert_int_equal(i, l.n - 1); /* [DONE] closes the stream */
            break;
        }
        json_t *c = l.data[i];
        if (json_object_get(c, "error")) {
            assert_true(errored);
            assert_int_equal(i, l.n - 1);
            assert_non_null(jstr(json_object_get(c, "error"), "message"));
            break;
        }
        assert_string_equal(jstr(c, "object"), "chat.completion.chunk");
        assert_true(jstr(c, "id") && *jstr(c, "id"));
        assert_true(json_is_integer(json_object_get(c, "created")));
        assert_non_null(jstr(c, "model"));
        json_t *choices = json_object_get(c, "choices");
        assert_true(json_is_array(choices));
        if (json_array_size(choices) == 0) {
            assert_true(include_usage);
            assert_int_equal(finishes, 1); /* usage after the finish chunk */
            assert_true(json_is_integer(json_object_get(json_object_get(c, "usage"), "prompt_tokens")));
            usage_seen++;
            continue;
        }
        json_t *ch = json_array_get(choices, 0), *delta = json_object_get(ch, "delta");
        assert_true(json_is_object(delta));
        if (i == 0)
            assert_string_equal(jstr(delta, "role"), "assistant");
        else
            assert_null(json_object_get(delta, "role"));
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(delta, "tool_calls"), k, tc) {
            json_int_t idx = json_integer_value(json_object_get(tc, "index"));
            assert_true(idx >= 0 && idx < 16);
            json_t *fn = json_object_get(tc, "function");
            if (!started[idx]) {
                /* the first delta of a call names it */
                assert_true(jstr(tc, "id") && *jstr(tc, "id"));
                assert_string_equal(jstr(tc, "type"), "function");
                assert_non_null(jstr(fn, "name"));
                started[idx] = 1;
            } else {
                assert_null(json_object_get(tc, "id"));
            }
            assert_non_null(jstr(fn, "arguments"));
        }
        if (jstr(ch, "finish_reason")) {
            finishes++;
            assert_int_equal(json_object_size(delta), 0);
        }
    }
    if (!errored) {
        assert_int_equal(finishes, 1);
        assert_true(l.done[l.n - 1]);
        assert_int_equal(usage_seen, include_usage ? 1 : 0);
    }
    list_free(&l);
}

static void validate_anthropic(const char *bytes, size_t n, int errored)
{
    sse_list l;
    collect_all(&l, bytes, n);
    assert_true(l.n >= 2);
    int open = -1, next = 0, open_tool = 0, saw_delta = 0;
    co_buf args;
    co_buf_init(&args, 1 << 20);
    for (size_t i = 0; i < l.n; i++) {
        json_t *d = l.data[i];
        const char *type = jstr(d, "type");
        assert_non_null(type);
        assert_string_equal(type, l.name[i]); /* event name mirrors the type */
        if (i == 0) {
            assert_string_equal(type, "message_start");
            json_t *m = json_object_get(d, "message");
            assert_true(jstr(m, "id") && *jstr(m, "id"));
            assert_string_equal(jstr(m, "role"), "assistant");
            assert_true(json_is_integer(json_object_get(json_object_get(m, "usage"), "input_tokens")));
            continue;
        }
        assert_string_not_equal(type, "message_start");
        if (!strcmp(type, "ping"))
            continue;
        if (!strcmp(type, "error")) {
            assert_true(errored);
            assert_int_equal(i, l.n - 1);
            assert_non_null(jstr(json_object_get(d, "error"), "type"));
            break;
        }
        assert_false(saw_delta && strcmp(type, "message_stop"));
        json_int_t idx = json_integer_value(json_object_get(d, "index"));
        if (!strcmp(type, "content_block_start")) {
            assert_int_equal(open, -1);
            assert_int_equal(idx, next);
            open = next++;
            json_t *cb = json_object_get(d, "content_block");
            open_tool = !strcmp(jstr(cb, "type"), "tool_use");
            if (open_tool) {
                assert_true(jstr(cb, "id") && *jstr(cb, "id"));
                assert_non_null(jstr(cb, "name"));
                assert_true(json_is_object(json_object_get(cb, "input")));
            } else {
                assert_string_equal(jstr(cb, "type"), "text");
            }
            co_buf_reset(&args);
        } else if (!strcmp(type, "content_block_delta")) {
            assert_int_equal(idx, open);
            json_t *delta = json_object_get(d, "delta");
            if (open_tool) {
                assert_string_equal(jstr(delta, "type"), "input_json_delta");
                co_buf_puts(&args, jstr(delta, "partial_json"));
            } else {
                assert_string_equal(jstr(delta, "type"), "text_delta");
                assert_true(jstr(delta, "text") && *jstr(delta, "text"));
            }
        } else if (!strcmp(type, "content_block_stop")) {
            assert_int_equal(idx, open);
            if (open_tool && args.len) {
                json_t *a = json_loads(args.p, 0, NULL); /* the streamed input is a whole object */
                assert_true(json_is_object(a));
                json_decref(a);
            }
            open = -1;
        } else if (!strcmp(type, "message_delta")) {
            assert_int_equal(open, -1);
            assert_non_null(jstr(json_object_get(d, "delta"), "stop_reason"));
            assert_true(json_is_integer(json_object_get(json_object_get(d, "usage"), "output_tokens")));
            saw_delta = 1;
        } else if (!strcmp(type, "message_stop")) {
            assert_true(saw_delta);
            assert_int_equal(i, l.n - 1);
        } else {
            fail_msg("unexpected event %s", type);
        }
    }
    if (!errored)
        assert_string_equal(l.name[l.n - 1], "message_stop");
    co_buf_free(&args);
    list_free(&l);
}

static void validate_gemini(const char *bytes, size_t n, int errored)
{
    sse_list l;
    collect_all(&l, bytes, n);
    int finishes = 0;
    for (size_t i = 0; i < l.n; i++) {
        json_t *d = l.data[i];
        if (json_object_get(d, "error")) {
            assert_true(errored);
            assert_true(json_is_integer(json_object_get(json_object_get(d, "error"), "code")));
            assert_int_equal(i, l.n - 1);
            break;
        }
        json_t *c = json_array_get(json_object_get(d, "candidates"), 0);
        json_t *content = json_object_get(c, "content");
        assert_string_equal(jstr(content, "role"), "model");
        assert_true(json_array_size(json_object_get(content, "parts")) > 0);
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(content, "parts"), k, p) {
            json_t *fc = json_object_get(p, "functionCall");
            if (fc)
                assert_true(json_is_object(json_object_get(fc, "args")));
        }
        if (jstr(c, "finishReason")) {
            finishes++;
            assert_int_equal(i, l.n - 1);
        }
    }
    if (!errored)
        assert_int_equal(finishes, 1);
    list_free(&l);
}

/* ---- re-encoding ---------------------------------------------------------- */

typedef struct relay {
    co_chat_encoder *enc;
    co_buf out;
    co_chat_accum *acc;
} relay;

static int relay_ev(void *ctx, const co_chat_event *ev)
{
    relay *r = ctx;
    int rc = co_chat_accum_event(r->acc, ev);
    if (!rc)
        rc = co_chat_encoder_event(r->enc, &r->out, ev);
    return rc;
}

static co_chat_response *accumulate(co_api api, const char *bytes, size_t n, size_t chunk)
{
    co_chat_accum *a = NULL;
    co_chat_response *r = NULL;
    assert_int_equal(co_chat_accum_new(&a, 1 << 20), 0);
    int rc = decode(api, bytes, n, chunk, 1, co_chat_accum_event, a);
    if (rc)
        fail_msg("decoding %s output: %s\n%.*s", co_api_name(api), co_error_last(), (int)n, bytes);
    assert_true(co_chat_accum_complete(a));
    assert_int_equal(co_chat_accum_take(a, &r), 0);
    co_chat_accum_free(a);
    return r;
}

static void assert_same_answer(const co_chat_response *a, const co_chat_response *b, co_api via, const char *what)
{
    if ((a->text == NULL) != (b->text == NULL) || (a->text && strcmp(a->text, b->text)))
        fail_msg("%s via %s: text '%s' != '%s'", what, co_api_name(via), a->text ? a->text : "(null)",
                 b->text ? b->text : "(null)");
    assert_int_equal(a->n_tool_calls, b->n_tool_calls);
    for (size_t k = 0; k < a->n_tool_calls; k++) {
        assert_string_equal(a->tool_calls[k].id, b->tool_calls[k].id);
        assert_string_equal(a->tool_calls[k].name, b->tool_calls[k].name);
        json_t *x = json_loads(a->tool_calls[k].arguments, 0, NULL), *y = json_loads(b->tool_calls[k].arguments, 0, NULL);
        if (!json_equal(x, y))
            fail_msg("%s via %s: tool %zu arguments %s != %s", what, co_api_name(via), k, a->tool_calls[k].arguments,
                     b->tool_calls[k].arguments);
        json_decref(x);
        json_decref(y);
    }
    assert_int_equal(a->has_error, b->has_error);
    if (a->has_error) {
        assert_int_equal(a->error.kind, b->error.kind);
        assert_string_equal(a->error.message, b->error.message);
        return;
    }
    assert_int_equal(a->finish, b->finish);
    assert_true(b->usage.known);
    assert_int_equal(a->usage.input_tokens, b->usage.input_tokens);
    assert_int_equal(a->usage.output_tokens, b->usage.output_tokens);
    assert_int_equal(a->usage.cached_input_tokens, b->usage.cached_input_tokens);
}

static void test_reencode_all_pairs(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIX; i++) {
        fixture f = fix(i);
        char *in = q(f.sse);
        size_t n = strlen(in);
        int errored = strstr(f.log, "\nerror ") != NULL;
        co_chat_response *orig = accumulate(f.api, in, n, n);
        for (int to = CO_API_OPENAI; to <= CO_API_GEMINI; to++) {
            relay r = {0};
            co_chat_encode_opts eo = {.include_usage = 1, .created = 1700000000};
            assert_int_equal(co_chat_encoder_new(&r.enc, (co_api)to, &eo), 0);
            assert_int_equal(co_chat_accum_new(&r.acc, 1 << 20), 0);
            co_buf_init(&r.out, 1 << 20);
            int rc = decode(f.api, in, n, 7, 3, relay_ev, &r);
            if (rc)
                fail_msg("%s -> %s: %s", f.name, co_api_name((co_api)to), co_error_last());
            if (to == CO_API_OPENAI)
                validate_openai(r.out.p, r.out.len, 1, errored);
            else if (to == CO_API_ANTHROPIC)
                validate_anthropic(r.out.p, r.out.len, errored);
            else
                validate_gemini(r.out.p, r.out.len, errored);
            /* our own output decodes back to the same answer, in any chunking */
            co_chat_response *back = accumulate((co_api)to, r.out.p, r.out.len, 5);
            assert_same_answer(orig, back, (co_api)to, f.name);
            co_chat_response_free(back);
            co_chat_encoder_free(r.enc);
            co_chat_accum_free(r.acc);
            co_buf_free(&r.out);
        }
        co_chat_response_free(orig);
        free(in);
    }
}

/* Encodes fixture i for `to` into a malloc'd string. */
static char *encode_fixture(size_t i, co_api to, const co_chat_encode_opts *eo)
{
    fixture f = fix(i);
    char *in = q(f.sse);
    relay r = {0};
    assert_int_equal(co_chat_encoder_new(&r.enc, to, eo), 0);
    assert_int_equal(co_chat_accum_new(&r.acc, 1 << 20), 0);
    co_buf_init(&r.out, 1 << 20);
    assert_int_equal(decode(f.api, in, strlen(in), 1, 0, relay_ev, &r), 0);
    co_chat_encoder_free(r.enc);
    co_chat_accum_free(r.acc);
    free(in);
    return co_buf_detach(&r.out);
}

static void test_claude_stream_to_openai_client(void **state)
{
    (void)state;
    co_chat_encode_opts eo = {.include_usage = 1, .model = "gpt-4o", .created = 1700000000};
    char *out = encode_fixture(3, CO_API_OPENAI, &eo); /* anthropic tools */
    char *want = q(
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'role':'assistant','content':''},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'content':'Okay, let me check'},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'content':' the weather.'},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'id':'toolu_01T1','type':'function','function':{'name':'get_weather','arguments':''}}]},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':'{\\'location\\':'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':' \\'San Francisco, CA\\'}'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'tool_calls':[{'index':1,'id':'toolu_01T2','type':'function','function':{'name':'get_time','arguments':''}}]},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{'tool_calls':[{'index':1,'function':{'arguments':'{}'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'tool_calls'}]}\n\n"
        "data: {'id':'msg_01XF','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o','choices':[],'usage':{'prompt_tokens':600,'completion_tokens':89,'total_tokens':689,'prompt_tokens_details':{'cached_tokens':128}}}\n\n"
        "data: [DONE]\n\n");
    assert_string_equal(out, want);
    free(want);
    free(out);
    /* without include_usage: no usage chunk */
    eo.include_usage = 0;
    out = encode_fixture(3, CO_API_OPENAI, &eo);
    assert_null(strstr(out, "\"usage\""));
    validate_openai(out, strlen(out), 0, 0);
    free(out);
}

static void test_openai_stream_to_anthropic_client(void **state)
{
    (void)state;
    co_chat_encode_opts eo = {.model = "claude-sonnet-4-5"};
    char *out = encode_fixture(1, CO_API_ANTHROPIC, &eo); /* openai parallel tools */
    char *want = q(
        "event: message_start\ndata: {'type':'message_start','message':{'id':'chatcmpl-T7','type':'message','role':'assistant','model':'claude-sonnet-4-5','content':[],'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':0,'cache_creation_input_tokens':0,'cache_read_input_tokens':0,'output_tokens':0}}}\n\n"
        "event: ping\ndata: {'type':'ping'}\n\n"
        "event: content_block_start\ndata: {'type':'content_block_start','index':0,'content_block':{'type':'tool_use','id':'call_Gx1','name':'get_weather','input':{}}}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':0,'delta':{'type':'input_json_delta','partial_json':'{\\'loc'}}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':0,'delta':{'type':'input_json_delta','partial_json':'ation\\': \\'Paris\\'}'}}\n\n"
        "event: content_block_stop\ndata: {'type':'content_block_stop','index':0}\n\n"
        "event: content_block_start\ndata: {'type':'content_block_start','index':1,'content_block':{'type':'tool_use','id':'call_Hy2','name':'get_time','input':{}}}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':'{\\'tz\\': \\'CET\\'}'}}\n\n"
        "event: content_block_stop\ndata: {'type':'content_block_stop','index':1}\n\n"
        "event: message_delta\ndata: {'type':'message_delta','delta':{'stop_reason':'tool_use','stop_sequence':null},'usage':{'input_tokens':16,'cache_creation_input_tokens':0,'cache_read_input_tokens':64,'output_tokens':40}}\n\n"
        "event: message_stop\ndata: {'type':'message_stop'}\n\n");
    assert_string_equal(out, want);
    free(want);
    free(out);
    /* text then stop: one text block, end_turn */
    out = encode_fixture(0, CO_API_ANTHROPIC, NULL);
    assert_non_null(strstr(out, "\"content_block\":{\"type\":\"text\",\"text\":\"\"}"));
    assert_non_null(strstr(out, "\"stop_reason\":\"end_turn\""));
    assert_non_null(strstr(out, "\"model\":\"gpt-4o-2024-08-06\""));
    free(out);
    /* Claude -> Claude keeps stop_sequence */
    out = encode_fixture(4, CO_API_ANTHROPIC, NULL);
    assert_non_null(strstr(out, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"###\""));
    assert_non_null(strstr(out, "\"cache_creation_input_tokens\":30"));
    free(out);
}

static void test_error_events_reencoded(void **state)
{
    (void)state;
    char *out = encode_fixture(5, CO_API_OPENAI, NULL); /* anthropic overloaded mid-stream */
    assert_non_null(strstr(out, "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,"
                                "\"code\":\"service_unavailable\"}}\n\n"));
    assert_null(strstr(out, "[DONE]"));
    free(out);
    out = encode_fixture(2, CO_API_ANTHROPIC, NULL); /* openai server error */
    const char *tail = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                       "\"The server had an error while processing your request.\"}}\n\n";
    assert_true(strlen(out) > strlen(tail));
    assert_string_equal(out + strlen(out) - strlen(tail), tail);
    free(out);
    out = encode_fixture(5, CO_API_GEMINI, NULL);
    assert_non_null(strstr(out, "data: {\"error\":{\"code\":503,\"message\":\"Overloaded\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n"));
    free(out);
}

static void test_accumulator(void **state)
{
    (void)state;
    char *in = q(AN_TOOL);
    co_chat_response *r = accumulate(CO_API_ANTHROPIC, in, strlen(in), 1);
    assert_string_equal(r->id, "msg_01XF");
    assert_string_equal(r->text, "Okay, let me check the weather.");
    assert_int_equal(r->n_tool_calls, 2);
    assert_string_equal(r->tool_calls[0].arguments, "{\"location\": \"San Francisco, CA\"}");
    assert_string_equal(r->tool_calls[1].arguments, "{}"); /* no input deltas */
    assert_int_equal(r->finish, CO_CHAT_FINISH_TOOL_CALLS);
    assert_string_equal(r->finish_raw, "tool_use");
    assert_int_equal(r->usage.input_tokens, 600);
    assert_int_equal(r->usage.output_tokens, 89);
    /* the collected shadow answer served as a whole response */
    co_buf b;
    co_buf_init(&b, 1 << 16);
    assert_int_equal(co_chat_response_emit(&b, r, CO_API_OPENAI), 0);
    assert_non_null(strstr(b.p, "\"finish_reason\":\"tool_calls\""));
    assert_non_null(strstr(b.p, "\"content\":\"Okay, let me check the weather.\""));
    co_buf_free(&b);
    co_chat_response_free(r);
    free(in);

    /* a stream that errors keeps what came and the error */
    in = q(AN_ERROR);
    r = accumulate(CO_API_ANTHROPIC, in, strlen(in), 3);
    assert_true(r->has_error);
    assert_int_equal(r->error.kind, CO_CHAT_ERR_OVERLOADED);
    assert_int_equal(r->finish, CO_CHAT_FINISH_ERROR);
    assert_string_equal(r->text, "Hel");
    co_chat_response_free(r);
    free(in);

    /* bounded */
    co_chat_accum *a = NULL;
    assert_int_equal(co_chat_accum_new(&a, 10), 0);
    co_chat_event st = {.kind = CO_CHAT_EV_START, .id = "x", .model = "m"};
    co_chat_event t = {.kind = CO_CHAT_EV_TEXT, .text = "123456", .len = 6};
    assert_int_equal(co_chat_accum_event(a, &st), 0);
    assert_int_equal(co_chat_accum_event(a, &t), 0);
    assert_int_equal(co_chat_accum_event(a, &t), CO_ETOOBIG);
    assert_false(co_chat_accum_complete(a));
    co_chat_accum_free(a);
}

static void test_decoder_faults(void **state)
{
    (void)state;
    co_buf log;
    co_buf_init(&log, 1 << 16);
    /* cut before the finish: truncated */
    char *in = q(OA_TEXT);
    const char *cut = strstr(in, "data: {\"id\":\"chatcmpl-B9MHD\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,"
                                 "\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_eb9dce56a8\","
                                 "\"choices\":[{\"index\":0,\"delta\":{},");
    assert_non_null(cut);
    assert_int_equal(decode(CO_API_OPENAI, in, (size_t)(cut - in), 0, 5, ev_log, &log), CO_EUPSTREAM);
    assert_string_equal(co_error_last(), "openai stream ended before a finish_reason (truncated)");
    /* cut after the finish but before [DONE]: complete enough, END is made up */
    co_buf_reset(&log);
    const char *done = strstr(in, "data: [DONE]");
    assert_int_equal(decode(CO_API_OPENAI, in, (size_t)(done - in), 0, 5, ev_log, &log), 0);
    assert_non_null(strstr(log.p, "finish stop raw=stop\nusage in=19 out=10 cached=0 write=0\nend\n"));
    free(in);
    /* nothing at all */
    assert_int_equal(decode(CO_API_ANTHROPIC, "", 0, 1, 0, ev_log, &log), CO_EUPSTREAM);
    assert_string_equal(co_error_last(), "anthropic stream ended before any event");
    /* Anthropic cut mid-block */
    in = q(AN_TOOL);
    cut = strstr(in, "event: message_delta");
    assert_int_equal(decode(CO_API_ANTHROPIC, in, (size_t)(cut - in), 0, 5, ev_log, &log), CO_EUPSTREAM);
    free(in);
    /* Gemini: END comes from the end of the body; without finishReason it is truncated */
    in = q(GM_TEXT);
    cut = strstr(in, "\r\n\r\n") + 4;
    assert_int_equal(decode(CO_API_GEMINI, in, (size_t)(cut - in), 0, 5, ev_log, &log), CO_EUPSTREAM);
    assert_string_equal(co_error_last(), "gemini stream ended before a finishReason (truncated)");
    free(in);
    /* not JSON */
    const char *junk = "data: {\"id\":\"c\",\"choices\":[]}\n\ndata: {oops\n\n";
    assert_int_equal(decode(CO_API_OPENAI, junk, strlen(junk), 3, 0, ev_log, &log), CO_EPARSE);
    assert_non_null(strstr(co_error_last(), "openai stream: event 2 is not a JSON object"));
    /* an event over the decoder's bound */
    co_chat_decoder *d = NULL;
    assert_int_equal(co_chat_decoder_new(&d, CO_API_OPENAI, 64, ev_log, &log), 0);
    char big[200];
    memset(big, 'x', sizeof big);
    assert_int_equal(co_chat_decoder_feed(d, "data: ", 6), 0);
    assert_int_equal(co_chat_decoder_feed(d, big, sizeof big), CO_ETOOBIG);
    co_chat_decoder_free(d);
    /* bytes after the end are ignored; done() says so */
    assert_int_equal(co_chat_decoder_new(&d, CO_API_OPENAI, 1 << 16, NULL, NULL), 0);
    in = q(OA_TEXT);
    assert_int_equal(co_chat_decoder_feed(d, in, strlen(in)), 0);
    assert_true(co_chat_decoder_done(d));
    assert_int_equal(co_chat_decoder_feed(d, "garbage\n\n", 9), 0);
    assert_int_equal(co_chat_decoder_finish(d), 0);
    co_chat_decoder_free(d);
    free(in);
    /* a callback's error stops the decoder */
    co_buf small;
    co_buf_init(&small, 8);
    in = q(OA_TEXT);
    assert_int_equal(decode(CO_API_OPENAI, in, strlen(in), 0, 9, ev_log, &small), CO_ETOOBIG);
    co_buf_free(&small);
    free(in);
    co_buf_free(&log);
}

/* Single events fed directly (the gateway may split SSE itself). */
static void test_decoder_event_api(void **state)
{
    (void)state;
    co_buf log;
    co_buf_init(&log, 1 << 16);
    co_chat_decoder *d = NULL;
    assert_int_equal(co_chat_decoder_new(&d, CO_API_ANTHROPIC, 1 << 16, ev_log, &log), 0);
    const char *s = "{\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}";
    co_sse_event ev = {.event = "message_start", .data = s, .data_len = strlen(s), .id = ""};
    assert_int_equal(co_chat_decoder_event(d, &ev), 0);
    s = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":9}}";
    ev = (co_sse_event){.event = "message_delta", .data = s, .data_len = strlen(s), .id = ""};
    assert_int_equal(co_chat_decoder_event(d, &ev), 0);
    assert_int_equal(co_chat_decoder_finish(d), 0);
    assert_string_equal(log.p, "start id=m1 model=c created=0 usage in=3 out=0 cached=0 write=0\n"
                               "finish length raw=max_tokens\n"
                               "usage in=3 out=9 cached=0 write=0\n"
                               "end\n");
    co_chat_decoder_free(d);
    co_buf_free(&log);
}

/* Interleaved tool-call arguments cannot become Anthropic blocks: a clear error. */
static void test_encoder_interleaved_tools(void **state)
{
    (void)state;
    co_chat_encoder *e = NULL;
    co_buf out;
    co_buf_init(&out, 1 << 16);
    assert_int_equal(co_chat_encoder_new(&e, CO_API_ANTHROPIC, NULL), 0);
    co_chat_event evs[] = {
        {.kind = CO_CHAT_EV_START, .id = "c", .model = "m"},
        {.kind = CO_CHAT_EV_TOOL_START, .index = 0, .tool_id = "a", .tool_name = "f"},
        {.kind = CO_CHAT_EV_TOOL_START, .index = 1, .tool_id = "b", .tool_name = "g"},
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(co_chat_encoder_event(e, &out, &evs[i]), 0);
    co_chat_event late = {.kind = CO_CHAT_EV_TOOL_ARGS, .index = 0, .text = "{}", .len = 2};
    assert_int_equal(co_chat_encoder_event(e, &out, &late), CO_EPARSE);
    assert_non_null(strstr(co_error_last(), "interleaved tool calls"));
    co_chat_encoder_free(e);
    /* the OpenAI encoder makes up a START when a stream begins without one */
    assert_int_equal(co_chat_encoder_new(&e, CO_API_OPENAI, NULL), 0);
    co_buf_reset(&out);
    co_chat_event t = {.kind = CO_CHAT_EV_TEXT, .text = "hi", .len = 2};
    assert_int_equal(co_chat_encoder_event(e, &out, &t), 0);
    assert_non_null(strstr(out.p, "\"role\":\"assistant\""));
    assert_non_null(strstr(out.p, "\"id\":\"chatcmpl-"));
    co_chat_encoder_free(e);
    co_buf_free(&out);
}


/* ---- mutations ------------------------------------------------------------ */

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static json_t *random_value(unsigned *s)
{
    switch (rnd(s) % 9) {
    case 0: return json_integer(rnd(s) % 3 ? 1 : -5);
    case 1: return json_string("x");
    case 2: return json_null();
    case 3: return json_false();
    case 4: return json_array();
    case 5: return json_object();
    case 6: return json_integer(2000);
    case 7: return json_string("tool_use");
    default: return json_pack("{s:s,s:i}", "type", "text_delta", "index", 1);
    }
}

static void mutate_json(json_t *j, unsigned *s, int depth)
{
    if (json_is_object(j) && json_object_size(j)) {
        size_t pick = rnd(s) % json_object_size(j), i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (i++ != pick)
                continue;
            if ((json_is_object(v) || json_is_array(v)) && depth < 6 && rnd(s) % 3)
                mutate_json(v, s, depth + 1);
            else if (rnd(s) % 4 == 0)
                json_object_del(j, k);
            else
                json_object_set_new(j, k, random_value(s));
            return;
        }
    } else if (json_is_array(j) && json_array_size(j)) {
        size_t i = rnd(s) % json_array_size(j);
        json_t *v = json_array_get(j, i);
        if ((json_is_object(v) || json_is_array(v)) && depth < 6 && rnd(s) % 3)
            mutate_json(v, s, depth + 1);
        else
            json_array_set_new(j, i, random_value(s));
    }
}

typedef struct mut_ctx {
    co_buf out;
    unsigned *seed;
    int left; /* events to mutate in this pass */
} mut_ctx;

/* Rewrites the transcript event by event, damaging some events' JSON. */
static int mutate_event(void *ctx, const co_sse_event *ev)
{
    mut_ctx *m = ctx;
    json_t *j = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (j && m->left > 0 && rnd(m->seed) % 3 == 0) {
        mutate_json(j, m->seed, 0);
        m->left--;
    }
    char *d = j ? json_dumps(j, JSON_COMPACT) : strdup(ev->data);
    if (rnd(m->seed) % 40 == 0) {
        free(d);
        d = strdup("[DONE]");
    }
    if (strcmp(ev->event, "message"))
        co_buf_printf(&m->out, "event: %s\n", ev->event);
    co_buf_printf(&m->out, "data: %s\n\n", d);
    free(d);
    json_decref(j);
    return 0;
}

static void test_stream_mutations(void **state)
{
    (void)state;
    const char *e = getenv("CO_FUZZ_ITERS");
    int n = e && atoi(e) > 0 ? atoi(e) : 150;
    unsigned seed = 4242;
    for (size_t i = 0; i < N_FIX; i++) {
        fixture f = fix(i);
        char *in = q(f.sse);
        for (int it = 0; it < n; it++) {
            mut_ctx m = {.seed = &seed, .left = 1 + (int)(rnd(&seed) % 3)};
            co_buf_init(&m.out, 1 << 20);
            co_sse_parser p;
            co_sse_init(&p, 1 << 20, mutate_event, &m);
            assert_int_equal(co_sse_feed(&p, in, strlen(in)), 0);
            assert_int_equal(co_sse_finish(&p), 0);
            co_sse_free(&p);
            /* any decoder on any (damaged) transcript, re-encoded for every client */
            for (int from = CO_API_OPENAI; from <= CO_API_GEMINI; from++) {
                for (int to = CO_API_OPENAI; to <= CO_API_GEMINI; to++) {
                    relay r = {0};
                    co_chat_encode_opts eo = {.include_usage = 1};
                    assert_int_equal(co_chat_encoder_new(&r.enc, (co_api)to, &eo), 0);
                    assert_int_equal(co_chat_accum_new(&r.acc, 1 << 20), 0);
                    co_buf_init(&r.out, 1 << 20);
                    int rc = decode((co_api)from, m.out.p, m.out.len, 1 + rnd(&seed) % 50, 0, relay_ev, &r);
                    if (rc && rc != CO_EPARSE && rc != CO_EUPSTREAM)
                        fail_msg("%s as %s: %s (%s)\n%s", f.name, co_api_name((co_api)from), co_err_name(rc),
                                 co_error_last(), m.out.p);
                    co_chat_response *resp = NULL;
                    assert_int_equal(co_chat_accum_take(r.acc, &resp), 0);
                    co_chat_response_free(resp);
                    if (!rc) {
                        /* a stream we accepted and re-encoded decodes again */
                        co_chat_accum *a = NULL;
                        assert_int_equal(co_chat_accum_new(&a, 1 << 20), 0);
                        int rc2 = decode((co_api)to, r.out.p, r.out.len, 13, 0, co_chat_accum_event, a);
                        if (rc2)
                            fail_msg("%s as %s -> %s: own output rejected: %s\n--- in:\n%s\n--- out:\n%s", f.name,
                                     co_api_name((co_api)from), co_api_name((co_api)to), co_error_last(), m.out.p,
                                     r.out.p);
                        co_chat_accum_free(a);
                    }
                    co_chat_encoder_free(r.enc);
                    co_chat_accum_free(r.acc);
                    co_buf_free(&r.out);
                }
            }
            co_buf_free(&m.out);
        }
        free(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_basics),
        cmocka_unit_test(test_sse_crlf_split),
        cmocka_unit_test(test_sse_limits),
        cmocka_unit_test(test_decode_transcripts),
        cmocka_unit_test(test_reencode_all_pairs),
        cmocka_unit_test(test_claude_stream_to_openai_client),
        cmocka_unit_test(test_openai_stream_to_anthropic_client),
        cmocka_unit_test(test_error_events_reencoded),
        cmocka_unit_test(test_accumulator),
        cmocka_unit_test(test_decoder_faults),
        cmocka_unit_test(test_decoder_event_api),
        cmocka_unit_test(test_encoder_interleaved_tools),
        cmocka_unit_test(test_stream_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
