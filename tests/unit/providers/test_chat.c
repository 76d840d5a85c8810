/* The canonical chat model: request parse/emit round trips and cross
 * translations (OpenAI, Anthropic, Gemini), dropped fields, precise
 * validation errors, responses and finish reasons, error bodies, the fast
 * path (peek, model rewrite) and cost. Streams are in test_stream.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/chat.h"
#include "cutover/error.h"

/* ---- helpers -------------------------------------------------------------- */

/* JSON written with ' for " (a literal ' is \u0027), for readable fixtures. */
static char *q(const char *s)
{
    char *c = strdup(s);
    for (char *p = c; *p; p++)
        if (*p == '\'')
            *p = '"';
    return c;
}

static json_t *J(const char *s)
{
    char *c = q(s);
    json_error_t e;
    json_t *j = json_loads(c, 0, &e);
    if (!j)
        fail_msg("fixture is not JSON: %s at %d:%d in %s", e.text, e.line, e.column, c);
    free(c);
    return j;
}

static void assert_json_eq(const char *got, const char *want_q)
{
    json_error_t e;
    json_t *g = json_loads(got, 0, &e);
    if (!g)
        fail_msg("output is not JSON (%s): %s", e.text, got);
    json_t *w = J(want_q);
    if (!json_equal(g, w)) {
        char *ws = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
        char *gs = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("want %s\n got  %s\n", ws, gs);
        free(ws);
        free(gs);
        json_decref(g);
        json_decref(w);
        fail();
    }
    json_decref(g);
    json_decref(w);
}

static co_chat_request *parse_req(co_api api, const char *body_q, const co_chat_parse_opts *o)
{
    char *b = q(body_q);
    co_chat_request *r = NULL;
    int rc = co_chat_request_parse(&r, api, b, strlen(b), o);
    if (rc)
        fail_msg("parse failed: %s", co_error_last());
    free(b);
    return r;
}

static char *emit_req(const co_chat_request *r, co_api api, const co_chat_emit_opts *o)
{
    co_buf b;
    co_buf_init(&b, 1 << 20);
    int rc = co_chat_request_emit(&b, r, api, o);
    if (rc)
        fail_msg("emit failed: %s", co_error_last());
    return co_buf_detach(&b);
}

static void expect_error(co_api api, const char *body_q, const char *msg)
{
    char *b = q(body_q);
    co_chat_request *r = NULL;
    int rc = co_chat_request_parse(&r, api, b, strlen(b), NULL);
    if (rc != CO_EPARSE)
        fail_msg("%s: want CO_EPARSE, got %s for %s", co_api_name(api), co_err_name(rc), b);
    assert_null(r);
    if (strcmp(co_error_last(), msg))
        fail_msg("want message\n  '%s'\ngot\n  '%s'", msg, co_error_last());
    free(b);
}

/* emit(parse(emit(r))) == emit(r): the form is stable. */
static void assert_stable(co_api api, const char *emitted)
{
    co_chat_request *r = NULL;
    assert_int_equal(co_chat_request_parse(&r, api, emitted, strlen(emitted), NULL), 0);
    char *again = emit_req(r, api, NULL);
    assert_string_equal(again, emitted);
    free(again);
    co_chat_request_free(r);
}

/* ---- fixtures ------------------------------------------------------------- */

static const char *OA_REQ =
    "{'model':'gpt-4o',"
    " 'messages':["
    "  {'role':'system','content':'You are terse.'},"
    "  {'role':'user','content':[{'type':'text','text':'What is in this image?'},"
    "     {'type':'image_url','image_url':{'url':'https://example.com/cat.png','detail':'high'}},"
    "     {'type':'image_url','image_url':{'url':'data:image/jpeg;base64,/9j/4AAQ'}}]},"
    "  {'role':'assistant','content':'Let me check the weather.','tool_calls':["
    "     {'id':'call_1','type':'function','function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Paris\\\"}'}},"
    "     {'id':'call_2','type':'function','function':{'name':'get_time','arguments':'{}'}}]},"
    "  {'role':'tool','tool_call_id':'call_1','content':'18C, sunny'},"
    "  {'role':'tool','tool_call_id':'call_2','content':[{'type':'text','text':'14:05'}]},"
    "  {'role':'user','content':'Thanks. Summarise.'}],"
    " 'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather by city',"
    "     'parameters':{'type':'object','properties':{'city':{'type':'string'}},'required':['city']}}},"
    "   {'type':'function','function':{'name':'get_time','parameters':{'type':'object','properties':{}}}}],"
    " 'tool_choice':'required','parallel_tool_calls':false,"
    " 'temperature':0.2,'top_p':0.9,'max_tokens':300,'stop':['END','\\n\\n'],"
    " 'stream':true,'stream_options':{'include_usage':true},'user':'user-42'}";

static const char *OA_TOOLS_OUT =
    "[{'type':'function','function':{'name':'get_weather','description':'Weather by city',"
    "   'parameters':{'type':'object','properties':{'city':{'type':'string'}},'required':['city']}}},"
    " {'type':'function','function':{'name':'get_time','parameters':{'type':'object','properties':{}}}}]";

static const char *AN_REQ =
    "{'model':'claude-sonnet-4-5','max_tokens':1024,"
    " 'system':[{'type':'text','text':'You are a helpful assistant.','cache_control':{'type':'ephemeral'}}],"
    " 'messages':["
    "  {'role':'user','content':[{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBORw0KGgo='}},"
    "     {'type':'text','text':'Describe this, then look up the weather.'}]},"
    "  {'role':'assistant','content':[{'type':'text','text':'A lighthouse.'},"
    "     {'type':'tool_use','id':'toolu_01A','name':'get_weather','input':{'city':'Brest'}}]},"
    "  {'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_01A','content':[{'type':'text','text':'rain'}],'is_error':false},"
    "     {'type':'text','text':'And tomorrow?'}]},"
    "  {'role':'assistant','content':[{'type':'tool_use','id':'toolu_01B','name':'get_weather','input':{'city':'Brest','day':'tomorrow'}}]},"
    "  {'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_01B','content':'service down','is_error':true}]}],"
    " 'tools':[{'name':'get_weather','description':'Weather','input_schema':{'type':'object',"
    "     'properties':{'city':{'type':'string'},'day':{'type':'string'}},'required':['city']},'cache_control':{'type':'ephemeral'}}],"
    " 'tool_choice':{'type':'tool','name':'get_weather'},"
    " 'temperature':0.5,'stop_sequences':['###'],'stream':false,'metadata':{'user_id':'u-7'},'top_k':40,"
    " 'thinking':{'type':'enabled','budget_tokens':2000}}";

static const char *AN_SCHEMA =
    "{'type':'object','properties':{'city':{'type':'string'},'day':{'type':'string'}},'required':['city']}";

static const char *GM_REQ =
    "{'systemInstruction':{'parts':[{'text':'Be brief.'}]},"
    " 'contents':["
    "  {'role':'user','parts':[{'text':'Weather in Rome?'},{'inlineData':{'mimeType':'image/jpeg','data':'AAAA'}}]},"
    "  {'role':'model','parts':[{'functionCall':{'name':'get_weather','args':{'city':'Rome'}}}]},"
    "  {'role':'user','parts':[{'functionResponse':{'name':'get_weather','response':{'content':'sunny'}}}]}],"
    " 'tools':[{'functionDeclarations':[{'name':'get_weather','description':'Weather',"
    "     'parameters':{'type':'object','properties':{'city':{'type':'string'}}}}]},{'googleSearch':{}}],"
    " 'toolConfig':{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['get_weather']}},"
    " 'generationConfig':{'temperature':0.7,'maxOutputTokens':256,'stopSequences':['STOP'],'topK':20},"
    " 'safetySettings':[{'category':'HARM_CATEGORY_HARASSMENT','threshold':'BLOCK_NONE'}]}";

/* ---- requests: canonical form --------------------------------------------- */

static void test_openai_parse(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_OPENAI, OA_REQ, NULL);
    assert_string_equal(r->model, "gpt-4o");
    assert_string_equal(r->system, "You are terse.");
    assert_int_equal(r->n_messages, 5);
    const co_chat_message *u = &r->messages[0];
    assert_int_equal(u->role, CO_CHAT_USER);
    assert_int_equal(u->n_parts, 3);
    assert_int_equal(u->parts[1].kind, CO_CHAT_PART_IMAGE);
    assert_string_equal(u->parts[1].url, "https://example.com/cat.png");
    assert_null(u->parts[1].data);
    assert_string_equal(u->parts[2].media_type, "image/jpeg");
    assert_string_equal(u->parts[2].data, "/9j/4AAQ");
    const co_chat_message *a = &r->messages[1];
    assert_int_equal(a->role, CO_CHAT_ASSISTANT);
    assert_int_equal(a->n_tool_calls, 2);
    assert_string_equal(a->tool_calls[0].id, "call_1");
    assert_string_equal(a->tool_calls[0].arguments, "{\"city\":\"Paris\"}");
    assert_int_equal(r->messages[2].role, CO_CHAT_TOOL);
    assert_string_equal(r->messages[2].tool_call_id, "call_1");
    assert_string_equal(r->messages[3].parts[0].text, "14:05");
    assert_int_equal(r->n_tools, 2);
    assert_string_equal(r->tools[0].description, "Weather by city");
    assert_null(r->tools[1].description);
    assert_int_equal(r->tool_choice, CO_CHAT_TOOLS_REQUIRED);
    assert_int_equal(r->parallel_tool_calls, 0);
    assert_true(r->has_temperature && fabs(r->temperature - 0.2) < 1e-12);
    assert_int_equal(r->max_tokens, 300);
    assert_int_equal(r->stop.n, 2);
    assert_string_equal(r->stop.v[1], "\n\n");
    assert_true(r->stream && r->include_usage);
    assert_string_equal(r->user, "user-42");
    assert_int_equal(r->dropped.n, 1);
    assert_string_equal(r->dropped.v[0], "messages[].content[].image_url.detail");
    co_chat_request_free(r);
}

static void test_openai_round_trip(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_OPENAI, OA_REQ, NULL);
    char *out = emit_req(r, CO_API_OPENAI, NULL);
    char want[8192];
    snprintf(want, sizeof want,
             "{'model':'gpt-4o','messages':["
             " {'role':'system','content':'You are terse.'},"
             " {'role':'user','content':[{'type':'text','text':'What is in this image?'},"
             "   {'type':'image_url','image_url':{'url':'https://example.com/cat.png'}},"
             "   {'type':'image_url','image_url':{'url':'data:image/jpeg;base64,/9j/4AAQ'}}]},"
             " {'role':'assistant','content':'Let me check the weather.','tool_calls':["
             "   {'id':'call_1','type':'function','function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Paris\\\"}'}},"
             "   {'id':'call_2','type':'function','function':{'name':'get_time','arguments':'{}'}}]},"
             " {'role':'tool','tool_call_id':'call_1','content':'18C, sunny'},"
             " {'role':'tool','tool_call_id':'call_2','content':'14:05'},"
             " {'role':'user','content':'Thanks. Summarise.'}],"
             " 'tools':%s,'tool_choice':'required','parallel_tool_calls':false,"
             " 'temperature':0.2,'top_p':0.9,'max_completion_tokens':300,'stop':['END','\\n\\n'],"
             " 'stream':true,'stream_options':{'include_usage':true},'user':'user-42'}",
             OA_TOOLS_OUT);
    assert_json_eq(out, want);
    assert_stable(CO_API_OPENAI, out);
    /* the legacy field name for OpenAI-compatible servers */
    co_chat_emit_opts o = {.openai_legacy_max_tokens = 1};
    char *legacy = emit_req(r, CO_API_OPENAI, &o);
    assert_non_null(strstr(legacy, "\"max_tokens\":300"));
    assert_null(strstr(legacy, "max_completion_tokens"));
    free(legacy);
    free(out);
    co_chat_request_free(r);
}

static void test_anthropic_parse(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_ANTHROPIC, AN_REQ, NULL);
    assert_string_equal(r->system, "You are a helpful assistant.");
    /* user, assistant, tool, user, assistant, tool */
    assert_int_equal(r->n_messages, 6);
    assert_int_equal(r->messages[0].parts[0].kind, CO_CHAT_PART_IMAGE);
    assert_string_equal(r->messages[0].parts[0].media_type, "image/png");
    assert_string_equal(r->messages[1].tool_calls[0].arguments, "{\"city\":\"Brest\"}");
    assert_int_equal(r->messages[2].role, CO_CHAT_TOOL);
    assert_string_equal(r->messages[2].tool_call_id, "toolu_01A");
    assert_false(r->messages[2].is_error);
    assert_int_equal(r->messages[3].role, CO_CHAT_USER);
    assert_string_equal(r->messages[3].parts[0].text, "And tomorrow?");
    assert_int_equal(r->messages[4].n_parts, 0);
    assert_true(r->messages[5].is_error);
    assert_int_equal(r->tool_choice, CO_CHAT_TOOLS_NAMED);
    assert_string_equal(r->tool_choice_name, "get_weather");
    assert_int_equal(r->max_tokens, 1024);
    assert_string_equal(r->user, "u-7");
    assert_true(co_chat_strv_has(&r->dropped, "system[].cache_control"));
    assert_true(co_chat_strv_has(&r->dropped, "tools[].cache_control"));
    assert_true(co_chat_strv_has(&r->dropped, "top_k"));
    assert_true(co_chat_strv_has(&r->dropped, "thinking"));
    assert_int_equal(r->dropped.n, 4);
    co_chat_request_free(r);
}

static void test_anthropic_round_trip(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_ANTHROPIC, AN_REQ, NULL);
    char *out = emit_req(r, CO_API_ANTHROPIC, NULL);
    char want[8192];
    snprintf(want, sizeof want,
             "{'model':'claude-sonnet-4-5','max_tokens':1024,'system':'You are a helpful assistant.',"
             " 'messages':["
             "  {'role':'user','content':[{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBORw0KGgo='}},"
             "     {'type':'text','text':'Describe this, then look up the weather.'}]},"
             "  {'role':'assistant','content':[{'type':'text','text':'A lighthouse.'},"
             "     {'type':'tool_use','id':'toolu_01A','name':'get_weather','input':{'city':'Brest'}}]},"
             "  {'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_01A','content':'rain'},"
             "     {'type':'text','text':'And tomorrow?'}]},"
             "  {'role':'assistant','content':[{'type':'tool_use','id':'toolu_01B','name':'get_weather','input':{'city':'Brest','day':'tomorrow'}}]},"
             "  {'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_01B','content':'service down','is_error':true}]}],"
             " 'tools':[{'name':'get_weather','description':'Weather','input_schema':%s}],"
             " 'tool_choice':{'type':'tool','name':'get_weather'},"
             " 'temperature':0.5,'stop_sequences':['###'],'metadata':{'user_id':'u-7'}}",
             AN_SCHEMA);
    assert_json_eq(out, want);
    assert_stable(CO_API_ANTHROPIC, out);
    free(out);
    co_chat_request_free(r);
}

static void test_openai_to_anthropic(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_OPENAI, OA_REQ, NULL);
    co_chat_strv dropped = {0};
    co_chat_emit_opts o = {.dropped = &dropped};
    char *out = emit_req(r, CO_API_ANTHROPIC, &o);
    assert_json_eq(out,
                   "{'model':'gpt-4o','max_tokens':300,'system':'You are terse.',"
                   " 'messages':["
                   "  {'role':'user','content':[{'type':'text','text':'What is in this image?'},"
                   "     {'type':'image','source':{'type':'url','url':'https://example.com/cat.png'}},"
                   "     {'type':'image','source':{'type':'base64','media_type':'image/jpeg','data':'/9j/4AAQ'}}]},"
                   "  {'role':'assistant','content':[{'type':'text','text':'Let me check the weather.'},"
                   "     {'type':'tool_use','id':'call_1','name':'get_weather','input':{'city':'Paris'}},"
                   "     {'type':'tool_use','id':'call_2','name':'get_time','input':{}}]},"
                   "  {'role':'user','content':[{'type':'tool_result','tool_use_id':'call_1','content':'18C, sunny'},"
                   "     {'type':'tool_result','tool_use_id':'call_2','content':'14:05'},"
                   "     {'type':'text','text':'Thanks. Summarise.'}]}],"
                   " 'tools':[{'name':'get_weather','description':'Weather by city','input_schema':"
                   "     {'type':'object','properties':{'city':{'type':'string'}},'required':['city']}},"
                   "   {'name':'get_time','input_schema':{'type':'object','properties':{}}}],"
                   " 'tool_choice':{'type':'any','disable_parallel_tool_use':true},"
                   " 'temperature':0.2,'top_p':0.9,'stop_sequences':['END'],'stream':true,"
                   " 'metadata':{'user_id':'user-42'}}");
    /* "\n\n" is whitespace-only: Anthropic refuses it */
    assert_int_equal(dropped.n, 1);
    assert_string_equal(dropped.v[0], "stop[] (whitespace-only)");
    co_chat_strv_free(&dropped);
    free(out);

    /* max_tokens: the documented default, or the configured one */
    r->max_tokens = 0;
    out = emit_req(r, CO_API_ANTHROPIC, NULL);
    assert_non_null(strstr(out, "\"max_tokens\":4096"));
    free(out);
    o = (co_chat_emit_opts){.default_max_tokens = 1000};
    out = emit_req(r, CO_API_ANTHROPIC, &o);
    assert_non_null(strstr(out, "\"max_tokens\":1000"));
    free(out);
    /* temperature above Anthropic's range is clamped and said so */
    r->temperature = 1.6;
    o = (co_chat_emit_opts){.dropped = &dropped};
    out = emit_req(r, CO_API_ANTHROPIC, &o);
    assert_non_null(strstr(out, "\"temperature\":1"));
    assert_true(co_chat_strv_has(&dropped, "temperature (above 1, clamped to 1)"));
    co_chat_strv_free(&dropped);
    free(out);
    co_chat_request_free(r);
}

static void test_anthropic_to_openai(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_ANTHROPIC, AN_REQ, NULL);
    co_chat_strv dropped = {0};
    co_chat_emit_opts o = {.dropped = &dropped};
    char *out = emit_req(r, CO_API_OPENAI, &o);
    char want[8192];
    snprintf(want, sizeof want,
             "{'model':'claude-sonnet-4-5','messages':["
             " {'role':'system','content':'You are a helpful assistant.'},"
             " {'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgo='}},"
             "   {'type':'text','text':'Describe this, then look up the weather.'}]},"
             " {'role':'assistant','content':'A lighthouse.','tool_calls':[{'id':'toolu_01A','type':'function',"
             "   'function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Brest\\\"}'}}]},"
             " {'role':'tool','tool_call_id':'toolu_01A','content':'rain'},"
             " {'role':'user','content':'And tomorrow?'},"
             " {'role':'assistant','content':null,'tool_calls':[{'id':'toolu_01B','type':'function',"
             "   'function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Brest\\\",\\\"day\\\":\\\"tomorrow\\\"}'}}]},"
             " {'role':'tool','tool_call_id':'toolu_01B','content':'service down'}],"
             " 'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather','parameters':%s}}],"
             " 'tool_choice':{'type':'function','function':{'name':'get_weather'}},"
             " 'temperature':0.5,'max_completion_tokens':1024,'stop':['###'],'user':'u-7'}",
             AN_SCHEMA);
    assert_json_eq(out, want);
    assert_int_equal(dropped.n, 1);
    assert_string_equal(dropped.v[0], "messages[].is_error");
    /* and back: the same Anthropic body as a direct round trip, minus is_error */
    co_chat_request *r2 = NULL;
    assert_int_equal(co_chat_request_parse(&r2, CO_API_OPENAI, out, strlen(out), NULL), 0);
    assert_int_equal(r2->dropped.n, 0);
    char *an = emit_req(r2, CO_API_ANTHROPIC, NULL);
    assert_non_null(strstr(an, "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\",\"content\":\"rain\"},"
                               "{\"type\":\"text\",\"text\":\"And tomorrow?\"}"));
    free(an);
    co_chat_request_free(r2);
    co_chat_strv_free(&dropped);
    free(out);
    co_chat_request_free(r);
}

static void test_ids_made_safe_for_anthropic(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_OPENAI,
                                   "{'model':'m','messages':[{'role':'user','content':'hi'},"
                                   " {'role':'assistant','tool_calls':[{'id':'call:1/x','type':'function',"
                                   "   'function':{'name':'f','arguments':'not json'}}]},"
                                   " {'role':'tool','tool_call_id':'call:1/x','content':'ok'}]}",
                                   NULL);
    co_chat_strv dropped = {0};
    co_chat_emit_opts o = {.dropped = &dropped};
    char *out = emit_req(r, CO_API_ANTHROPIC, &o);
    assert_json_eq(out, "{'model':'m','max_tokens':4096,'messages':["
                        " {'role':'user','content':'hi'},"
                        " {'role':'assistant','content':[{'type':'tool_use','id':'call_1_x','name':'f','input':{}}]},"
                        " {'role':'user','content':[{'type':'tool_result','tool_use_id':'call_1_x','content':'ok'}]}]}");
    assert_true(co_chat_strv_has(&dropped, "messages[].tool_calls[].arguments (not a JSON object)"));
    co_chat_strv_free(&dropped);
    free(out);
    co_chat_request_free(r);
}

static void test_gemini_requests(void **state)
{
    (void)state;
    co_chat_parse_opts po = {.model = "gemini-2.5-flash", .stream = 1};
    co_chat_request *r = parse_req(CO_API_GEMINI, GM_REQ, &po);
    assert_string_equal(r->model, "gemini-2.5-flash");
    assert_true(r->stream);
    assert_string_equal(r->system, "Be brief.");
    assert_int_equal(r->n_messages, 3);
    assert_string_equal(r->messages[1].tool_calls[0].id, "call_c1_0");
    assert_string_equal(r->messages[2].tool_call_id, "call_c1_0");
    assert_string_equal(r->messages[2].parts[0].text, "sunny");
    assert_int_equal(r->tool_choice, CO_CHAT_TOOLS_NAMED);
    assert_int_equal(r->max_tokens, 256);
    assert_true(co_chat_strv_has(&r->dropped, "tools[].googleSearch"));
    assert_true(co_chat_strv_has(&r->dropped, "generationConfig.topK"));
    assert_true(co_chat_strv_has(&r->dropped, "safetySettings"));
    assert_int_equal(r->dropped.n, 3);

    char *g = emit_req(r, CO_API_GEMINI, NULL);
    assert_json_eq(g, "{'contents':["
                      "  {'role':'user','parts':[{'text':'Weather in Rome?'},{'inlineData':{'mimeType':'image/jpeg','data':'AAAA'}}]},"
                      "  {'role':'model','parts':[{'functionCall':{'name':'get_weather','args':{'city':'Rome'}}}]},"
                      "  {'role':'user','parts':[{'functionResponse':{'name':'get_weather','response':{'content':'sunny'}}}]}],"
                      " 'systemInstruction':{'parts':[{'text':'Be brief.'}]},"
                      " 'tools':[{'functionDeclarations':[{'name':'get_weather','description':'Weather',"
                      "     'parametersJsonSchema':{'type':'object','properties':{'city':{'type':'string'}}}}]}],"
                      " 'toolConfig':{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['get_weather']}},"
                      " 'generationConfig':{'temperature':0.7,'maxOutputTokens':256,'stopSequences':['STOP']}}");
    free(g);

    char *oa = emit_req(r, CO_API_OPENAI, NULL);
    assert_json_eq(oa, "{'model':'gemini-2.5-flash','messages':["
                       " {'role':'system','content':'Be brief.'},"
                       " {'role':'user','content':[{'type':'text','text':'Weather in Rome?'},"
                       "   {'type':'image_url','image_url':{'url':'data:image/jpeg;base64,AAAA'}}]},"
                       " {'role':'assistant','content':null,'tool_calls':[{'id':'call_c1_0','type':'function',"
                       "   'function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Rome\\\"}'}}]},"
                       " {'role':'tool','tool_call_id':'call_c1_0','content':'sunny'}],"
                       " 'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather',"
                       "   'parameters':{'type':'object','properties':{'city':{'type':'string'}}}}}],"
                       " 'tool_choice':{'type':'function','function':{'name':'get_weather'}},"
                       " 'temperature':0.7,'max_completion_tokens':256,'stop':['STOP'],"
                       " 'stream':true,'stream_options':{'include_usage':true}}");
    free(oa);
    co_chat_request_free(r);

    /* OpenAI -> Gemini: results named by their call, images inline or by URI */
    r = parse_req(CO_API_OPENAI, OA_REQ, NULL);
    co_chat_strv dropped = {0};
    co_chat_emit_opts o = {.dropped = &dropped};
    g = emit_req(r, CO_API_GEMINI, &o);
    json_t *j = json_loads(g, 0, NULL);
    json_t *c = json_object_get(j, "contents");
    assert_int_equal(json_array_size(c), 4);
    json_t *w = J("[{'text':'What is in this image?'},{'fileData':{'mimeType':'image/png','fileUri':'https://example.com/cat.png'}},"
                  " {'inlineData':{'mimeType':'image/jpeg','data':'/9j/4AAQ'}}]");
    assert_true(json_equal(json_object_get(json_array_get(c, 0), "parts"), w));
    json_decref(w);
    w = J("{'role':'user','parts':[{'functionResponse':{'name':'get_weather','response':{'content':'18C, sunny'}}},"
          " {'functionResponse':{'name':'get_time','response':{'content':'14:05'}}}]}");
    assert_true(json_equal(json_array_get(c, 2), w));
    json_decref(w);
    w = J("{'functionCallingConfig':{'mode':'ANY'}}");
    assert_true(json_equal(json_object_get(j, "toolConfig"), w));
    json_decref(w);
    assert_true(co_chat_strv_has(&dropped, "user"));
    assert_true(co_chat_strv_has(&dropped, "parallel_tool_calls"));
    json_decref(j);
    free(g);
    co_chat_strv_free(&dropped);
    co_chat_request_free(r);
}

static void test_response_format(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_OPENAI,
                                   "{'model':'m','messages':[{'role':'user','content':'x'}],"
                                   " 'response_format':{'type':'json_schema','json_schema':{'name':'answer','strict':true,"
                                   "   'schema':{'type':'object','properties':{'a':{'type':'integer'}}}}}}",
                                   NULL);
    assert_int_equal(r->format, CO_CHAT_FORMAT_JSON_SCHEMA);
    assert_int_equal(r->format_strict, 1);
    char *oa = emit_req(r, CO_API_OPENAI, NULL);
    assert_json_eq(oa, "{'model':'m','messages':[{'role':'user','content':'x'}],"
                       " 'response_format':{'type':'json_schema','json_schema':{'name':'answer',"
                       "   'schema':{'type':'object','properties':{'a':{'type':'integer'}}},'strict':true}}}");
    free(oa);
    char *g = emit_req(r, CO_API_GEMINI, NULL);
    assert_json_eq(g, "{'contents':[{'role':'user','parts':[{'text':'x'}]}],"
                      " 'generationConfig':{'responseMimeType':'application/json',"
                      "   'responseJsonSchema':{'type':'object','properties':{'a':{'type':'integer'}}}}}");
    free(g);
    co_chat_strv dropped = {0};
    co_chat_emit_opts o = {.dropped = &dropped};
    char *an = emit_req(r, CO_API_ANTHROPIC, &o);
    assert_true(co_chat_strv_has(&dropped, "response_format"));
    co_chat_strv_free(&dropped);
    free(an);
    co_chat_request_free(r);
}

static void test_dropped_fields(void **state)
{
    (void)state;
    co_chat_request *r = parse_req(CO_API_OPENAI,
                                   "{'model':'m','frequency_penalty':0.5,'seed':7,'logprobs':true,'n':2,'presence_penalty':null,"
                                   " 'messages':[{'role':'user','content':'x','name':'bob'},{'role':'user','content':'y','name':'al'},"
                                   "  {'role':'user','content':[{'type':'input_audio','input_audio':{'data':'AA','format':'wav'}}]}],"
                                   " 'tools':[{'type':'function','function':{'name':'f','strict':true}}]}",
                                   NULL);
    const char *want[] = {"messages[].name", "messages[].content[].input_audio", "tools[].function.strict", "n",
                          "frequency_penalty", "seed", "logprobs"};
    assert_int_equal(r->dropped.n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(r->dropped.v[i], want[i]);
    co_chat_request_free(r);
    /* nothing dropped from a plain body, n = 1 included */
    r = parse_req(CO_API_OPENAI, "{'model':'m','n':1,'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_int_equal(r->dropped.n, 0);
    co_chat_request_free(r);
}

static void test_builders(void **state)
{
    (void)state;
    co_chat_request *r = NULL;
    co_chat_message *m = NULL;
    assert_int_equal(co_chat_request_new(&r), 0);
    assert_int_equal(co_chat_request_set_str(&r->model, "claude-haiku-4-5"), 0);
    assert_int_equal(co_chat_request_set_str(&r->system, "sys"), 0);
    assert_int_equal(co_chat_request_add_message(r, CO_CHAT_USER, &m), 0);
    assert_int_equal(co_chat_message_add_text(m, "hello", 5), 0);
    assert_int_equal(co_chat_message_add_image_data(m, "image/gif", "R0lG"), 0);
    assert_int_equal(co_chat_request_add_tool(r, "f", NULL, NULL), 0);
    char *t = NULL;
    assert_int_equal(co_chat_message_text(&t, m, "|"), 0);
    assert_string_equal(t, "hello");
    free(t);
    char *out = emit_req(r, CO_API_ANTHROPIC, NULL);
    assert_json_eq(out, "{'model':'claude-haiku-4-5','max_tokens':4096,'system':'sys','messages':[{'role':'user','content':["
                        " {'type':'text','text':'hello'},{'type':'image','source':{'type':'base64','media_type':'image/gif','data':'R0lG'}}]}],"
                        " 'tools':[{'name':'f','input_schema':{'type':'object','properties':{}}}]}");
    free(out);
    co_chat_request_free(r);
    co_api api;
    assert_int_equal(co_api_from_name(&api, "openai-compatible"), 0);
    assert_int_equal(api, CO_API_OPENAI);
    assert_int_equal(co_api_from_name(&api, "gemini"), 0);
    assert_int_equal(api, CO_API_GEMINI);
    assert_int_equal(co_api_from_name(&api, "mistral"), CO_EINVAL);
    assert_string_equal(co_api_name(CO_API_ANTHROPIC), "anthropic");
}


static void test_lossy_edges(void **state)
{
    (void)state;
    /* empty turns: OpenAI takes them, Anthropic and Gemini refuse them */
    co_chat_request *r = parse_req(CO_API_OPENAI,
                                   "{'model':'m','messages':[{'role':'user','content':''},{'role':'assistant','content':''},"
                                   " {'role':'user','content':'hi'}]}",
                                   NULL);
    char *oa = emit_req(r, CO_API_OPENAI, NULL);
    assert_json_eq(oa, "{'model':'m','messages':[{'role':'user','content':''},{'role':'assistant','content':''},"
                       " {'role':'user','content':'hi'}]}");
    free(oa);
    co_chat_strv dropped = {0};
    co_chat_emit_opts o = {.dropped = &dropped};
    char *an = emit_req(r, CO_API_ANTHROPIC, &o);
    assert_json_eq(an, "{'model':'m','max_tokens':4096,'messages':[{'role':'user','content':'hi'}]}");
    assert_true(co_chat_strv_has(&dropped, "messages[] (empty, skipped)"));
    free(an);
    char *g = emit_req(r, CO_API_GEMINI, &o);
    assert_json_eq(g, "{'contents':[{'role':'user','parts':[{'text':'hi'}]}]}");
    free(g);
    co_chat_strv_free(&dropped);
    co_chat_request_free(r);
    r = parse_req(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':''}]}", NULL);
    co_buf b;
    co_buf_init(&b, 4096);
    assert_int_equal(co_chat_request_emit(&b, r, CO_API_ANTHROPIC, NULL), CO_EPARSE);
    assert_string_equal(co_error_last(), "no message has content Anthropic can take (all are empty)");
    assert_int_equal(co_chat_request_emit(&b, r, CO_API_GEMINI, NULL), CO_EPARSE);
    assert_int_equal(b.len, 0);
    co_buf_free(&b);
    co_chat_request_free(r);

    /* an image in a tool result: Anthropic carries it, OpenAI and Gemini cannot */
    r = parse_req(CO_API_ANTHROPIC,
                  "{'model':'c','max_tokens':9,'messages':[{'role':'user','content':'shot?'},"
                  " {'role':'assistant','content':[{'type':'tool_use','id':'t1','name':'screenshot','input':{}}]},"
                  " {'role':'user','content':[{'type':'tool_result','tool_use_id':'t1','content':[{'type':'text','text':'here'},"
                  "   {'type':'image','source':{'type':'base64','media_type':'image/png','data':'QUJD'}}]}]}]}",
                  NULL);
    an = emit_req(r, CO_API_ANTHROPIC, NULL);
    assert_non_null(strstr(an, "\"content\":[{\"type\":\"text\",\"text\":\"here\"},{\"type\":\"image\""));
    free(an);
    o = (co_chat_emit_opts){.dropped = &dropped};
    oa = emit_req(r, CO_API_OPENAI, &o);
    assert_non_null(strstr(oa, "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"here\"}"));
    assert_true(co_chat_strv_has(&dropped, "messages[].tool_result.image"));
    free(oa);
    co_chat_strv_free(&dropped);
    g = emit_req(r, CO_API_GEMINI, &o);
    assert_non_null(strstr(g, "{\"functionResponse\":{\"name\":\"screenshot\",\"response\":{\"content\":\"here\"}}}"));
    assert_true(co_chat_strv_has(&dropped, "messages[].tool_result.image"));
    free(g);
    co_chat_strv_free(&dropped);
    co_chat_request_free(r);

    /* tool errors: Gemini says {"error": ...}, and reads it back as an error */
    r = parse_req(CO_API_ANTHROPIC, AN_REQ, NULL);
    g = emit_req(r, CO_API_GEMINI, NULL);
    assert_non_null(strstr(g, "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"error\":\"service down\"}}}"));
    co_chat_request *back = NULL;
    assert_int_equal(co_chat_request_parse(&back, CO_API_GEMINI, g, strlen(g), NULL), 0);
    assert_true(back->messages[back->n_messages - 1].is_error);
    co_chat_request_free(back);
    free(g);
    co_chat_request_free(r);
}

/* ---- requests: precise errors --------------------------------------------- */

static void test_request_errors(void **state)
{
    (void)state;
    co_chat_request *r = NULL;
    assert_int_equal(co_chat_request_parse(&r, CO_API_OPENAI, "{\"model\":", 9, NULL), CO_EPARSE);
    assert_non_null(strstr(co_error_last(), "request body is not valid JSON"));
    assert_non_null(strstr(co_error_last(), "line 1"));
    assert_int_equal(co_chat_request_parse(&r, CO_API_OPENAI, "", 0, NULL), CO_EPARSE);
    assert_string_equal(co_error_last(), "request body is empty: expected a JSON object");

    expect_error(CO_API_OPENAI, "[1,2]", "request body must be a JSON object");
    expect_error(CO_API_OPENAI, "{'messages':[]}", "model is required");
    expect_error(CO_API_OPENAI, "{'model':3,'messages':[]}", "model must be a string, not an integer");
    expect_error(CO_API_OPENAI, "{'model':'m'}", "messages is required");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':{}}", "messages must be an array");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[]}", "messages must contain at least one message");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':['hi']}", "messages[0] must be an object");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'content':'hi'}]}", "messages[0].role is required");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'robot','content':'hi'}]}",
                 "messages[0].role must be one of system, developer, user, assistant, tool (got 'robot')");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'function','content':'hi','name':'f'}]}",
                 "messages[0].role 'function' is deprecated and not supported: use 'tool'");
    expect_error(CO_API_OPENAI,
                 "{'model':'m','messages':[{'role':'system','content':'s'},{'role':'user','content':'a'},{'role':'user','content':5}]}",
                 "messages[2].content must be a string or an array of content parts");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user'}]}",
                 "messages[0].content is required for a user message");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':[{'type':'video'}]}]}",
                 "messages[0].content[0].type must be one of text, image_url, input_audio, file (got 'video')");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':[{'text':'x'}]}]}",
                 "messages[0].content[0].type is required and must be a string");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':1}]}]}",
                 "messages[0].content[0].text must be a string");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url','image_url':{}}]}]}",
                 "messages[0].content[0].image_url.url must be a string");
    expect_error(CO_API_OPENAI,
                 "{'model':'m','messages':[{'role':'user','content':'x'},{'role':'tool','content':'r'}]}",
                 "messages[1].tool_call_id is required for a tool message");
    expect_error(CO_API_OPENAI,
                 "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'type':'function','function':{'name':'f'}}]}]}",
                 "messages[0].tool_calls[0].id is required and must be a string");
    expect_error(CO_API_OPENAI,
                 "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'id':'c','type':'function','function':{'name':'f','arguments':{}}}]}]}",
                 "messages[0].tool_calls[0].function.arguments must be a string");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'temperature':'hot'}",
                 "temperature must be a number, not a string");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'stream':'yes'}",
                 "stream must be a boolean, not a string");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'max_tokens':0}",
                 "max_tokens must be an integer >= 1");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'stop':5}",
                 "stop must be a string or an array of strings");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'stop':['a',1]}",
                 "stop[1] must be a string");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'tools':{}}",
                 "tools must be an array");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'tools':[{'type':'function','function':{}}]}",
                 "tools[0].function.name is required and must be a non-empty string");
    expect_error(CO_API_OPENAI,
                 "{'model':'m','messages':[{'role':'user','content':'x'}],'tools':[{'type':'function','function':{'name':'f','parameters':[]}}]}",
                 "tools[0].function.parameters must be an object (a JSON Schema)");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'tool_choice':'sometimes'}",
                 "tool_choice must be 'auto', 'none', 'required' or an object naming a function (got 'sometimes')");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'stream_options':true}",
                 "stream_options must be an object");
    expect_error(CO_API_OPENAI, "{'model':'m','messages':[{'role':'user','content':'x'}],'response_format':{'type':'xml'}}",
                 "response_format.type must be text, json_object or json_schema (got 'xml')");

    expect_error(CO_API_ANTHROPIC, "{'model':'c','messages':[{'role':'user','content':'x'}]}", "max_tokens is required");
    expect_error(CO_API_ANTHROPIC, "{'model':'c','max_tokens':10}", "messages is required");
    expect_error(CO_API_ANTHROPIC, "{'model':'c','max_tokens':10,'messages':[{'role':'system','content':'x'}]}",
                 "messages[0].role must be 'user' or 'assistant' (got 'system')");
    expect_error(CO_API_ANTHROPIC, "{'model':'c','max_tokens':10,'messages':[{'role':'user'}]}",
                 "messages[0].content is required");
    expect_error(CO_API_ANTHROPIC, "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':7}]}",
                 "messages[0].content must be a string or an array of content blocks");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':'q'},{'role':'user','content':[{'type':'tool_result','content':'r'}]}]}",
                 "messages[1].content[0].tool_use_id is required");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':[{'type':'tool_use','id':'t','name':'f','input':{}}]}]}",
                 "messages[0].content[0]: tool_use blocks are only allowed in assistant messages");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'assistant','content':[{'type':'tool_result','tool_use_id':'t'}]}]}",
                 "messages[0].content[0]: tool_result blocks are only allowed in user messages");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':[{'type':'image','source':{'type':'file'}}]}]}",
                 "messages[0].content[0].source.type must be 'base64' or 'url'");
    expect_error(CO_API_ANTHROPIC, "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':'x'}],'system':5}",
                 "system must be a string or an array of text blocks");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':'x'}],'tools':[{'name':'f'}]}",
                 "tools[0].input_schema is required and must be an object");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':'x'}],'tool_choice':{'type':'maybe'}}",
                 "tool_choice.type must be one of auto, any, tool, none (got 'maybe')");
    expect_error(CO_API_ANTHROPIC,
                 "{'model':'c','max_tokens':10,'messages':[{'role':'user','content':'x'}],'metadata':{'user_id':5}}",
                 "metadata.user_id must be a string, not an integer");

    expect_error(CO_API_GEMINI, "{}", "contents is required");
    expect_error(CO_API_GEMINI, "{'contents':[{'role':'bot','parts':[{'text':'x'}]}]}",
                 "contents[0].role must be 'user' or 'model' (got 'bot')");
    expect_error(CO_API_GEMINI, "{'contents':[{'role':'user','parts':{}}]}", "contents[0].parts must be an array");
    expect_error(CO_API_GEMINI, "{'contents':[{'role':'user','parts':[{'functionResponse':{'response':{}}}]}]}",
                 "contents[0].parts[0].functionResponse.name is required and must be a string");
    expect_error(CO_API_GEMINI, "{'contents':[{'role':'model','parts':[{'functionResponse':{'name':'f','response':{}}}]}]}",
                 "contents[0].parts[0].functionResponse is only allowed in user contents");
    expect_error(CO_API_GEMINI, "{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'temperature':'warm'}}",
                 "generationConfig.temperature must be a number, not a string");
}

/* ---- responses ------------------------------------------------------------ */

static co_chat_response *parse_resp(co_api api, const char *body_q)
{
    char *b = q(body_q);
    co_chat_response *r = NULL;
    if (co_chat_response_parse(&r, api, b, strlen(b)))
        fail_msg("response parse failed: %s", co_error_last());
    free(b);
    return r;
}

/* Emitted response with "created" removed (it is the current time when unknown). */
static char *emit_resp(const co_chat_response *r, co_api api)
{
    co_buf b;
    co_buf_init(&b, 1 << 20);
    if (co_chat_response_emit(&b, r, api))
        fail_msg("response emit failed: %s", co_error_last());
    json_t *j = json_loads(b.p, 0, NULL);
    assert_non_null(j);
    if (api == CO_API_OPENAI) {
        assert_true(json_is_integer(json_object_get(j, "created")));
        json_object_del(j, "created");
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    co_buf_free(&b);
    return s;
}

static const char *OA_RESP =
    "{'id':'chatcmpl-abc','object':'chat.completion','created':1741570283,'model':'gpt-4o-2024-08-06',"
    " 'choices':[{'index':0,'message':{'role':'assistant','content':null,'tool_calls':[{'id':'call_X','type':'function',"
    "   'function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Paris\\\"}'}}],'refusal':null,'annotations':[]},"
    "   'logprobs':null,'finish_reason':'tool_calls'}],"
    " 'usage':{'prompt_tokens':1000,'completion_tokens':50,'total_tokens':1050,"
    "   'prompt_tokens_details':{'cached_tokens':400,'audio_tokens':0}},"
    " 'service_tier':'default','system_fingerprint':'fp_x'}";

static const char *AN_RESP =
    "{'id':'msg_01','type':'message','role':'assistant','model':'claude-sonnet-4-5-20250929',"
    " 'content':[{'type':'thinking','thinking':'hmm','signature':'s'},{'type':'text','text':'Hi there'}],"
    " 'stop_reason':'stop_sequence','stop_sequence':'###',"
    " 'usage':{'input_tokens':10,'cache_creation_input_tokens':5,'cache_read_input_tokens':20,'output_tokens':7}}";

static void test_response_openai_to_anthropic(void **state)
{
    (void)state;
    co_chat_response *r = parse_resp(CO_API_OPENAI, OA_RESP);
    assert_string_equal(r->id, "chatcmpl-abc");
    assert_int_equal(r->created, 1741570283);
    assert_null(r->text);
    assert_int_equal(r->n_tool_calls, 1);
    assert_int_equal(r->finish, CO_CHAT_FINISH_TOOL_CALLS);
    assert_int_equal(r->usage.input_tokens, 1000);
    assert_int_equal(r->usage.cached_input_tokens, 400);
    char *an = emit_resp(r, CO_API_ANTHROPIC);
    assert_json_eq(an, "{'id':'chatcmpl-abc','type':'message','role':'assistant','model':'gpt-4o-2024-08-06',"
                       " 'content':[{'type':'tool_use','id':'call_X','name':'get_weather','input':{'city':'Paris'}}],"
                       " 'stop_reason':'tool_use','stop_sequence':null,"
                       " 'usage':{'input_tokens':600,'cache_creation_input_tokens':0,'cache_read_input_tokens':400,'output_tokens':50}}");
    free(an);
    char *oa = emit_resp(r, CO_API_OPENAI);
    assert_json_eq(oa, "{'id':'chatcmpl-abc','object':'chat.completion','model':'gpt-4o-2024-08-06',"
                       " 'choices':[{'index':0,'message':{'role':'assistant','content':null,'tool_calls':[{'id':'call_X',"
                       "   'type':'function','function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Paris\\\"}'}}],"
                       "   'refusal':null},'logprobs':null,'finish_reason':'tool_calls'}],"
                       " 'usage':{'prompt_tokens':1000,'completion_tokens':50,'total_tokens':1050,'prompt_tokens_details':{'cached_tokens':400}}}");
    free(oa);
    co_chat_response_free(r);
}

static void test_response_anthropic_to_openai(void **state)
{
    (void)state;
    co_chat_response *r = parse_resp(CO_API_ANTHROPIC, AN_RESP);
    assert_string_equal(r->text, "Hi there");
    assert_int_equal(r->finish, CO_CHAT_FINISH_STOP);
    assert_string_equal(r->stop_sequence, "###");
    /* normalised: input includes cache reads and writes */
    assert_int_equal(r->usage.input_tokens, 35);
    assert_int_equal(r->usage.cached_input_tokens, 20);
    assert_int_equal(r->usage.cache_write_tokens, 5);
    char *oa = emit_resp(r, CO_API_OPENAI);
    assert_json_eq(oa, "{'id':'msg_01','object':'chat.completion','model':'claude-sonnet-4-5-20250929',"
                       " 'choices':[{'index':0,'message':{'role':'assistant','content':'Hi there','refusal':null},"
                       "   'logprobs':null,'finish_reason':'stop'}],"
                       " 'usage':{'prompt_tokens':35,'completion_tokens':7,'total_tokens':42,'prompt_tokens_details':{'cached_tokens':20}}}");
    free(oa);
    /* round trip keeps stop_sequence and the cache split */
    char *an = emit_resp(r, CO_API_ANTHROPIC);
    assert_json_eq(an, "{'id':'msg_01','type':'message','role':'assistant','model':'claude-sonnet-4-5-20250929',"
                       " 'content':[{'type':'text','text':'Hi there'}],'stop_reason':'stop_sequence','stop_sequence':'###',"
                       " 'usage':{'input_tokens':10,'cache_creation_input_tokens':5,'cache_read_input_tokens':20,'output_tokens':7}}");
    free(an);
    co_chat_response_free(r);

    /* an Anthropic tool call to an OpenAI client */
    r = parse_resp(CO_API_ANTHROPIC,
                   "{'id':'msg_02','type':'message','role':'assistant','model':'claude-haiku-4-5',"
                   " 'content':[{'type':'text','text':'Checking.'},{'type':'tool_use','id':'toolu_9','name':'lookup','input':{'q':'x','n':2}}],"
                   " 'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':3,'output_tokens':4}}");
    oa = emit_resp(r, CO_API_OPENAI);
    assert_json_eq(oa, "{'id':'msg_02','object':'chat.completion','model':'claude-haiku-4-5',"
                       " 'choices':[{'index':0,'message':{'role':'assistant','content':'Checking.','tool_calls':[{'id':'toolu_9',"
                       "   'type':'function','function':{'name':'lookup','arguments':'{\\\"q\\\":\\\"x\\\",\\\"n\\\":2}'}}],'refusal':null},"
                       "   'logprobs':null,'finish_reason':'tool_calls'}],"
                       " 'usage':{'prompt_tokens':3,'completion_tokens':4,'total_tokens':7,'prompt_tokens_details':{'cached_tokens':0}}}");
    free(oa);
    co_chat_response_free(r);
}

static void test_response_gemini(void **state)
{
    (void)state;
    co_chat_response *r = parse_resp(CO_API_GEMINI,
                                     "{'candidates':[{'content':{'parts':[{'text':'thinking...','thought':true},"
                                     "   {'functionCall':{'name':'get_weather','args':{'city':'Oslo'}}}],'role':'model'},"
                                     "  'finishReason':'STOP','index':0}],"
                                     " 'usageMetadata':{'promptTokenCount':100,'candidatesTokenCount':10,'totalTokenCount':130,"
                                     "  'cachedContentTokenCount':60,'thoughtsTokenCount':20},"
                                     " 'modelVersion':'gemini-2.5-pro','responseId':'resp1'}");
    assert_null(r->text);
    assert_int_equal(r->finish, CO_CHAT_FINISH_TOOL_CALLS); /* STOP after a function call */
    assert_string_equal(r->tool_calls[0].id, "call_resp1_0");
    assert_int_equal(r->usage.input_tokens, 100);
    assert_int_equal(r->usage.output_tokens, 30);
    assert_int_equal(r->usage.cached_input_tokens, 60);
    char *oa = emit_resp(r, CO_API_OPENAI);
    assert_json_eq(oa, "{'id':'resp1','object':'chat.completion','model':'gemini-2.5-pro',"
                       " 'choices':[{'index':0,'message':{'role':'assistant','content':null,'tool_calls':[{'id':'call_resp1_0',"
                       "   'type':'function','function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Oslo\\\"}'}}],'refusal':null},"
                       "   'logprobs':null,'finish_reason':'tool_calls'}],"
                       " 'usage':{'prompt_tokens':100,'completion_tokens':30,'total_tokens':130,'prompt_tokens_details':{'cached_tokens':60}}}");
    free(oa);
    co_chat_response_free(r);

    r = parse_resp(CO_API_ANTHROPIC, AN_RESP);
    char *g = emit_resp(r, CO_API_GEMINI);
    assert_json_eq(g, "{'candidates':[{'content':{'parts':[{'text':'Hi there'}],'role':'model'},'finishReason':'STOP','index':0}],"
                      " 'usageMetadata':{'promptTokenCount':35,'candidatesTokenCount':7,'totalTokenCount':42,'cachedContentTokenCount':20},"
                      " 'modelVersion':'claude-sonnet-4-5-20250929','responseId':'msg_01'}");
    free(g);
    co_chat_response_free(r);

    /* a blocked prompt has no candidates */
    r = parse_resp(CO_API_GEMINI, "{'promptFeedback':{'blockReason':'SAFETY'},'usageMetadata':{'promptTokenCount':5}}");
    assert_int_equal(r->finish, CO_CHAT_FINISH_CONTENT_FILTER);
    char *an = emit_resp(r, CO_API_ANTHROPIC);
    assert_non_null(strstr(an, "\"stop_reason\":\"refusal\""));
    assert_non_null(strstr(an, "\"content\":[]"));
    free(an);
    co_chat_response_free(r);
}

/* finish reason of `api`'s body -> the string another API gets. */
static void finish_case(co_api from, const char *raw, co_api to, const char *want)
{
    char body[512];
    co_chat_response *r = NULL;
    if (from == CO_API_OPENAI)
        snprintf(body, sizeof body, "{\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"finish_reason\":\"%s\"}]}", raw);
    else if (from == CO_API_ANTHROPIC)
        snprintf(body, sizeof body, "{\"id\":\"x\",\"model\":\"m\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],\"stop_reason\":\"%s\"}", raw);
    else
        snprintf(body, sizeof body, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}],\"role\":\"model\"},\"finishReason\":\"%s\"}]}", raw);
    assert_int_equal(co_chat_response_parse(&r, from, body, strlen(body)), 0);
    co_buf b;
    co_buf_init(&b, 1 << 16);
    assert_int_equal(co_chat_response_emit(&b, r, to), 0);
    json_t *j = json_loads(b.p, 0, NULL);
    const char *got = to == CO_API_OPENAI ? json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "finish_reason"))
                      : to == CO_API_ANTHROPIC ? json_string_value(json_object_get(j, "stop_reason"))
                                               : json_string_value(json_object_get(json_array_get(json_object_get(j, "candidates"), 0), "finishReason"));
    if (!got || strcmp(got, want))
        fail_msg("%s '%s' -> %s: want '%s', got '%s'", co_api_name(from), raw, co_api_name(to), want, got ? got : "(null)");
    json_decref(j);
    co_buf_free(&b);
    co_chat_response_free(r);
}

static void test_finish_reasons(void **state)
{
    (void)state;
    finish_case(CO_API_OPENAI, "stop", CO_API_ANTHROPIC, "end_turn");
    finish_case(CO_API_OPENAI, "length", CO_API_ANTHROPIC, "max_tokens");
    finish_case(CO_API_OPENAI, "tool_calls", CO_API_ANTHROPIC, "tool_use");
    finish_case(CO_API_OPENAI, "content_filter", CO_API_ANTHROPIC, "refusal");
    finish_case(CO_API_OPENAI, "length", CO_API_GEMINI, "MAX_TOKENS");
    finish_case(CO_API_ANTHROPIC, "end_turn", CO_API_OPENAI, "stop");
    finish_case(CO_API_ANTHROPIC, "stop_sequence", CO_API_OPENAI, "stop");
    finish_case(CO_API_ANTHROPIC, "max_tokens", CO_API_OPENAI, "length");
    finish_case(CO_API_ANTHROPIC, "tool_use", CO_API_OPENAI, "tool_calls");
    finish_case(CO_API_ANTHROPIC, "refusal", CO_API_OPENAI, "content_filter");
    /* "other" keeps its own string for its own API, a neutral one elsewhere */
    finish_case(CO_API_ANTHROPIC, "pause_turn", CO_API_ANTHROPIC, "pause_turn");
    finish_case(CO_API_ANTHROPIC, "pause_turn", CO_API_OPENAI, "stop");
    finish_case(CO_API_GEMINI, "STOP", CO_API_OPENAI, "stop");
    finish_case(CO_API_GEMINI, "MAX_TOKENS", CO_API_ANTHROPIC, "max_tokens");
    finish_case(CO_API_GEMINI, "SAFETY", CO_API_OPENAI, "content_filter");
    finish_case(CO_API_GEMINI, "RECITATION", CO_API_GEMINI, "RECITATION");
    finish_case(CO_API_GEMINI, "MALFORMED_FUNCTION_CALL", CO_API_OPENAI, "stop");
    assert_string_equal(co_chat_finish_name(CO_CHAT_FINISH_TOOL_CALLS), "tool_calls");
}

static void test_response_errors(void **state)
{
    (void)state;
    co_chat_response *r = NULL;
    assert_int_equal(co_chat_response_parse(&r, CO_API_OPENAI, "{\"id\":1}", 8), CO_EPARSE);
    assert_string_equal(co_error_last(), "response body: choices must be an array");
    assert_int_equal(co_chat_response_parse(&r, CO_API_ANTHROPIC, "{}", 2), CO_EPARSE);
    assert_string_equal(co_error_last(), "response body: content must be an array");
    assert_int_equal(co_chat_response_parse(&r, CO_API_GEMINI, "nope", 4), CO_EPARSE);
    assert_non_null(strstr(co_error_last(), "response body is not valid JSON"));
    assert_null(r);
}

/* ---- error bodies --------------------------------------------------------- */

static void test_error_format(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 4096);
    assert_int_equal(co_chat_error_format(&b, CO_API_OPENAI, 0, CO_CHAT_ERR_INVALID_REQUEST,
                                          "messages[2].content must be a string", "messages[2].content"), 0);
    assert_json_eq(b.p, "{'error':{'message':'messages[2].content must be a string','type':'invalid_request_error',"
                        "'param':'messages[2].content','code':null}}");
    co_buf_reset(&b);
    assert_int_equal(co_chat_error_format(&b, CO_API_OPENAI, 0, CO_CHAT_ERR_RATE_LIMIT, "slow down", NULL), 0);
    assert_json_eq(b.p, "{'error':{'message':'slow down','type':'requests','param':null,'code':'rate_limit_exceeded'}}");
    const char *an_types[] = {"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                              "request_too_large", "rate_limit_error", "api_error", "overloaded_error"};
    for (int k = CO_CHAT_ERR_INVALID_REQUEST; k <= CO_CHAT_ERR_OVERLOADED; k++) {
        char want[256];
        co_buf_reset(&b);
        assert_int_equal(co_chat_error_format(&b, CO_API_ANTHROPIC, 0, (co_chat_err_kind)k, "m", NULL), 0);
        snprintf(want, sizeof want, "{'type':'error','error':{'type':'%s','message':'m'}}", an_types[k]);
        assert_json_eq(b.p, want);
    }
    co_buf_reset(&b);
    assert_int_equal(co_chat_error_format(&b, CO_API_GEMINI, 0, CO_CHAT_ERR_RATE_LIMIT, "quota", NULL), 0);
    assert_json_eq(b.p, "{'error':{'code':429,'message':'quota','status':'RESOURCE_EXHAUSTED'}}");
    co_buf_reset(&b);
    assert_int_equal(co_chat_error_format(&b, CO_API_GEMINI, 0, CO_CHAT_ERR_OVERLOADED, "busy", NULL), 0);
    assert_json_eq(b.p, "{'error':{'code':503,'message':'busy','status':'UNAVAILABLE'}}");
    assert_int_equal(co_chat_err_status(CO_API_ANTHROPIC, CO_CHAT_ERR_OVERLOADED), 529);
    assert_int_equal(co_chat_err_status(CO_API_OPENAI, CO_CHAT_ERR_OVERLOADED), 503);
    assert_int_equal(co_chat_err_status(CO_API_OPENAI, CO_CHAT_ERR_REQUEST_TOO_LARGE), 413);
    co_buf_free(&b);
}

static void error_case(co_api api, int status, const char *body, co_chat_err_kind kind, const char *msg)
{
    co_chat_error e;
    co_chat_error_parse(&e, api, status, body, body ? strlen(body) : 0);
    assert_int_equal(e.status, status);
    if (e.kind != kind)
        fail_msg("%s %d %s: kind %d, want %d", co_api_name(api), status, body ? body : "", e.kind, kind);
    assert_string_equal(e.message, msg);
}

static void test_error_parse(void **state)
{
    (void)state;
    error_case(CO_API_OPENAI, 429,
               "{\"error\":{\"message\":\"Rate limit reached for gpt-4o\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
               CO_CHAT_ERR_RATE_LIMIT, "Rate limit reached for gpt-4o");
    error_case(CO_API_OPENAI, 401,
               "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"}}",
               CO_CHAT_ERR_AUTHENTICATION, "Incorrect API key provided");
    error_case(CO_API_OPENAI, 400, "{\"error\":\"bad things\"}", CO_CHAT_ERR_INVALID_REQUEST, "bad things");
    error_case(CO_API_ANTHROPIC, 529,
               "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"},\"request_id\":\"req_1\"}",
               CO_CHAT_ERR_OVERLOADED, "Overloaded");
    error_case(CO_API_ANTHROPIC, 413,
               "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\",\"message\":\"Request exceeds the maximum size\"}}",
               CO_CHAT_ERR_REQUEST_TOO_LARGE, "Request exceeds the maximum size");
    error_case(CO_API_GEMINI, 429,
               "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
               CO_CHAT_ERR_RATE_LIMIT, "You exceeded your current quota");
    error_case(CO_API_GEMINI, 400,
               "{\"error\":{\"code\":400,\"message\":\"API key not valid.\",\"status\":\"INVALID_ARGUMENT\","
               "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\"}]}}",
               CO_CHAT_ERR_AUTHENTICATION, "API key not valid.");
    /* a proxy's HTML page, an empty body, another API's shape */
    error_case(CO_API_OPENAI, 502, "<html>\n<body>Bad Gateway</body>\n</html>", CO_CHAT_ERR_API,
               "<html> <body>Bad Gateway</body> </html>");
    error_case(CO_API_ANTHROPIC, 503, NULL, CO_CHAT_ERR_OVERLOADED, "upstream returned HTTP 503");
    error_case(CO_API_ANTHROPIC, 404, "{\"error\":{\"message\":\"The model does not exist\",\"type\":\"invalid_request_error\",\"code\":\"model_not_found\"}}",
               CO_CHAT_ERR_NOT_FOUND, "The model does not exist");
    /* re-shaped for a client of another API */
    co_chat_error e;
    const char *up = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Number of requests has exceeded your rate limit\"}}";
    co_chat_error_parse(&e, CO_API_ANTHROPIC, 429, up, strlen(up));
    co_buf b;
    co_buf_init(&b, 4096);
    assert_int_equal(co_chat_error_format(&b, CO_API_OPENAI, e.status, e.kind, e.message, NULL), 0);
    assert_json_eq(b.p, "{'error':{'message':'Number of requests has exceeded your rate limit','type':'requests',"
                        "'param':null,'code':'rate_limit_exceeded'}}");
    co_buf_free(&b);
    assert_string_equal(e.type, "rate_limit_error");
}

/* ---- fast path ------------------------------------------------------------ */

static void rewrite_case(const char *in, const char *model, const char *want)
{
    co_buf b;
    co_buf_init(&b, 1 << 16);
    int rc = co_chat_rewrite_model(&b, in, strlen(in), model);
    if (rc)
        fail_msg("rewrite failed: %s", co_error_last());
    if (strcmp(b.p, want))
        fail_msg("rewrite of %s\nwant %s\ngot  %s", in, want, b.p);
    co_buf_free(&b);
}

static void test_rewrite_model(void **state)
{
    (void)state;
    /* only the value's bytes change: spacing, order, escapes and numbers stay */
    rewrite_case("{ \"messages\": [{\"role\":\"user\",\"content\":\"model \\\"x\\\" \\u00e9\"}],\n  \"model\" :  \"gpt-4o\" , \"temperature\":1.10}",
                 "claude-sonnet-4-5",
                 "{ \"messages\": [{\"role\":\"user\",\"content\":\"model \\\"x\\\" \\u00e9\"}],\n  \"model\" :  \"claude-sonnet-4-5\" , \"temperature\":1.10}");
    /* a nested "model" is not the model */
    rewrite_case("{\"metadata\":{\"model\":\"keep\"},\"model\":\"a\"}", "b", "{\"metadata\":{\"model\":\"keep\"},\"model\":\"b\"}");
    /* absent: added first */
    rewrite_case("{\"messages\":[]}", "m", "{\"model\":\"m\",\"messages\":[]}");
    rewrite_case(" {} ", "m", " {\"model\":\"m\"} ");
    /* a model name that needs escaping; a non-string model value */
    rewrite_case("{\"model\":null}", "we\"ird", "{\"model\":\"we\\\"ird\"}");
    rewrite_case("{\"model\":{\"a\":[1,\"}\"]},\"x\":1}", "m", "{\"model\":\"m\",\"x\":1}");
    /* duplicate keys: every top-level one */
    rewrite_case("{\"model\":\"a\",\"model\":\"b\"}", "c", "{\"model\":\"c\",\"model\":\"c\"}");
    /* a key spelled with escapes: parsed and dumped, order kept */
    rewrite_case("{\"stream\":true,\"mod\\u0065l\":\"a\",\"n\":1}", "z", "{\"stream\":true,\"model\":\"z\",\"n\":1}");
    co_buf b;
    co_buf_init(&b, 64);
    assert_int_equal(co_chat_rewrite_model(&b, "{\"model\":", 9, "x"), CO_EPARSE);
    assert_int_equal(co_chat_rewrite_model(&b, "[]", 2, "x"), CO_EPARSE);
    /* the buffer's limit holds */
    const char *big = "{\"model\":\"a\",\"pad\":\"0123456789012345678901234567890123456789012345678901234567890\"}";
    assert_int_equal(co_chat_rewrite_model(&b, big, strlen(big), "b"), CO_ETOOBIG);
    assert_int_equal(b.len, 0);
    co_buf_free(&b);
}

static void test_peek(void **state)
{
    (void)state;
    co_chat_peek p;
    const char *oa = "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"u1\",\"messages\":[]}";
    assert_int_equal(co_chat_peek_parse(&p, CO_API_OPENAI, oa, strlen(oa)), 0);
    assert_string_equal(p.model, "gpt-4o");
    assert_string_equal(p.user, "u1");
    assert_true(p.stream && p.include_usage);
    co_chat_peek_free(&p);
    const char *an = "{\"model\":\"claude\",\"metadata\":{\"user_id\":\"u2\"},\"max_tokens\":5}";
    assert_int_equal(co_chat_peek_parse(&p, CO_API_ANTHROPIC, an, strlen(an)), 0);
    assert_string_equal(p.model, "claude");
    assert_string_equal(p.user, "u2");
    assert_false(p.stream);
    assert_true(p.include_usage);
    co_chat_peek_free(&p);
    const char *sid = "{\"model\":\"m\",\"safety_identifier\":\"h1\"}";
    assert_int_equal(co_chat_peek_parse(&p, CO_API_OPENAI, sid, strlen(sid)), 0);
    assert_string_equal(p.user, "h1");
    assert_false(p.include_usage);
    co_chat_peek_free(&p);
    const char *badt = "{\"model\":\"m\",\"stream\":\"true\"}";
    assert_int_equal(co_chat_peek_parse(&p, CO_API_OPENAI, badt, strlen(badt)), CO_EPARSE);
    assert_string_equal(co_error_last(), "stream must be a boolean, not a string");
    assert_null(p.model);
    const char *gm = "{\"contents\":[]}";
    assert_int_equal(co_chat_peek_parse(&p, CO_API_GEMINI, gm, strlen(gm)), 0);
    assert_null(p.model);
    co_chat_peek_free(&p);
}

static void test_gemini_path(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 256);
    assert_int_equal(co_chat_gemini_path(&b, "gemini-2.5-flash", 1), 0);
    assert_string_equal(b.p, "models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    co_buf_reset(&b);
    assert_int_equal(co_chat_gemini_path(&b, "gemini-2.5-pro", 0), 0);
    assert_string_equal(b.p, "models/gemini-2.5-pro:generateContent");
    assert_int_equal(co_chat_gemini_path(&b, "../x", 0), CO_EINVAL);
    co_buf_free(&b);
    char *model = NULL;
    int stream = -1;
    assert_int_equal(co_chat_gemini_path_parse(&model, &stream, "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"), 0);
    assert_string_equal(model, "gemini-2.5-pro");
    assert_int_equal(stream, 1);
    free(model);
    assert_int_equal(co_chat_gemini_path_parse(&model, &stream, "/v1beta/models/gemini-2.5-pro:countTokens"), CO_EPARSE);
}

/* ---- cost ----------------------------------------------------------------- */

static void test_cost(void **state)
{
    (void)state;
    co_chat_prices p = {.input = 2.5, .output = 10, .cached_input = 1.25};
    /* OpenAI: prompt_tokens 1000 include 400 cached */
    co_chat_response *oa = parse_resp(CO_API_OPENAI, OA_RESP);
    double want = (600 * 2.5 + 400 * 1.25 + 50 * 10) / 1e6;
    assert_true(fabs(co_chat_cost_usd(&oa->usage, &p) - want) < 1e-12);
    /* the same traffic reported the Anthropic way costs the same */
    co_chat_response *an = parse_resp(CO_API_ANTHROPIC,
                                      "{'id':'m','model':'c','content':[],'stop_reason':'end_turn',"
                                      " 'usage':{'input_tokens':600,'cache_read_input_tokens':400,'cache_creation_input_tokens':0,'output_tokens':50}}");
    assert_true(fabs(co_chat_cost_usd(&an->usage, &p) - want) < 1e-12);
    /* cache writes: at their own price when given, else at the input price */
    co_chat_usage u = {.known = 1, .input_tokens = 1000, .cached_input_tokens = 100, .cache_write_tokens = 300, .output_tokens = 0};
    assert_true(fabs(co_chat_cost_usd(&u, &p) - (600 * 2.5 + 100 * 1.25 + 300 * 2.5) / 1e6) < 1e-12);
    p.cache_write = 3.75;
    assert_true(fabs(co_chat_cost_usd(&u, &p) - (600 * 2.5 + 100 * 1.25 + 300 * 3.75) / 1e6) < 1e-12);
    /* nonsense counts never go negative */
    co_chat_usage odd = {.input_tokens = 10, .cached_input_tokens = 50, .output_tokens = -3};
    assert_true(co_chat_cost_usd(&odd, &p) >= 0);
    co_chat_response_free(oa);
    co_chat_response_free(an);
}


/* ---- mutations: never a crash, a leak or an unexpected status ------------- */

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* Every object member and array element of j, depth first. */
static void nodes(json_t *j, json_t **out, size_t *n, size_t cap)
{
    const char *k;
    json_t *v;
    size_t i;
    if (*n < cap)
        out[(*n)++] = j;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v) nodes(v, out, n, cap);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) nodes(v, out, n, cap);
    }
}

static json_t *random_value(unsigned *s)
{
    switch (rnd(s) % 10) {
    case 0: return json_integer(-1);
    case 1: return json_string("x");
    case 2: return json_null();
    case 3: return json_true();
    case 4: return json_array();
    case 5: return json_object();
    case 6: return json_pack("[i]", 1);
    case 7: return json_pack("{s:s}", "type", "text");
    case 8: return json_pack("{s:s,s:s}", "type", "tool_result", "content", "r");
    default: return json_real(1e300);
    }
}

/* Replaces one random member or element of c (or deletes it). */
static void mutate1(json_t *c, unsigned *s)
{
    json_t *all[512];
    size_t n = 0;
    nodes(c, all, &n, 512);
    json_t *parent = all[rnd(s) % n];
    if (json_is_object(parent) && json_object_size(parent)) {
        size_t pick = rnd(s) % json_object_size(parent), i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(parent, k, v) {
            if (i++ == pick) {
                if (rnd(s) % 4 == 0)
                    json_object_del(parent, k);
                else
                    json_object_set_new(parent, k, random_value(s));
                break;
            }
        }
    } else if (json_is_array(parent) && json_array_size(parent)) {
        size_t i = rnd(s) % json_array_size(parent);
        if (rnd(s) % 4 == 0)
            json_array_remove(parent, i);
        else
            json_array_set_new(parent, i, random_value(s));
    }
}

/* 1 to 3 random changes in a copy of root, dumped. */
static char *mutate(const json_t *root, unsigned *s)
{
    json_t *c = json_deep_copy(root);
    for (unsigned k = 1 + rnd(s) % 3; k > 0; k--)
        mutate1(c, s);
    char *out = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return out;
}

/* CO_FUZZ_ITERS=N makes the mutation tests run longer (default: quick). */
static int iters(int dflt)
{
    const char *e = getenv("CO_FUZZ_ITERS");
    return e && atoi(e) > 0 ? atoi(e) : dflt;
}

static void check_body(const char *b, size_t len)
{
    for (int api = CO_API_OPENAI; api <= CO_API_GEMINI; api++) {
        co_chat_request *r = NULL;
        co_chat_parse_opts po = {.model = "m"};
        int rc = co_chat_request_parse(&r, (co_api)api, b, len, &po);
        if (rc) {
            if (rc != CO_EPARSE)
                fail_msg("%s parse: %s (%s) for %.*s", co_api_name((co_api)api), co_err_name(rc), co_error_last(), (int)len, b);
            assert_true(strlen(co_error_last()) > 5);
            assert_null(r);
            continue;
        }
        for (int to = CO_API_OPENAI; to <= CO_API_GEMINI; to++) {
            co_buf out;
            co_chat_strv dropped = {0};
            co_chat_emit_opts eo = {.dropped = &dropped};
            co_buf_init(&out, 1 << 20);
            rc = co_chat_request_emit(&out, r, (co_api)to, &eo);
            if (rc == CO_EPARSE && strstr(co_error_last(), "(all are empty)")) {
                co_chat_strv_free(&dropped);
                co_buf_free(&out);
                continue;
            }
            if (rc)
                fail_msg("%s -> %s emit: %s for %.*s", co_api_name((co_api)api), co_api_name((co_api)to), co_error_last(), (int)len, b);
            /* what we emit, we parse */
            co_chat_request *back = NULL;
            rc = co_chat_request_parse(&back, (co_api)to, out.p, out.len, &po);
            if (rc)
                fail_msg("%s -> %s: own output rejected: %s\n%s", co_api_name((co_api)api), co_api_name((co_api)to),
                         co_error_last(), out.p);
            co_chat_request_free(back);
            co_chat_strv_free(&dropped);
            co_buf_free(&out);
        }
        co_chat_request_free(r);
    }
    co_chat_peek p;
    if (co_chat_peek_parse(&p, CO_API_OPENAI, b, len) == 0)
        co_chat_peek_free(&p);
    co_buf rw;
    co_buf_init(&rw, 1 << 20);
    if (co_chat_rewrite_model(&rw, b, len, "m2") == 0) {
        json_t *j = json_loadb(rw.p, rw.len, 0, NULL);
        assert_true(json_is_object(j));
        assert_string_equal(json_string_value(json_object_get(j, "model")), "m2");
        json_decref(j);
    }
    co_buf_free(&rw);
}

static void test_request_mutations(void **state)
{
    (void)state;
    const char *fixtures[] = {OA_REQ, AN_REQ, GM_REQ};
    unsigned s = 12345;
    int n = iters(700);
    for (size_t f = 0; f < 3; f++) {
        json_t *root = J(fixtures[f]);
        for (int i = 0; i < n; i++) {
            char *b = mutate(root, &s);
            check_body(b, strlen(b));
            /* byte-level damage too: truncation and a flipped byte */
            size_t len = strlen(b);
            check_body(b, rnd(&s) % (len + 1));
            b[rnd(&s) % len] = "{}[],:\"\\0 x"[rnd(&s) % 11];
            check_body(b, len);
            free(b);
        }
        json_decref(root);
    }
}

static void test_response_mutations(void **state)
{
    (void)state;
    const char *fixtures[] = {OA_RESP, AN_RESP,
                              "{'candidates':[{'content':{'parts':[{'text':'a'},{'functionCall':{'name':'f','args':{'x':1}}}],'role':'model'},"
                              " 'finishReason':'STOP'}],'usageMetadata':{'promptTokenCount':1},'responseId':'r'}"};
    unsigned s = 777;
    int n = iters(500);
    for (size_t f = 0; f < 3; f++) {
        json_t *root = J(fixtures[f]);
        for (int i = 0; i < n; i++) {
            char *b = mutate(root, &s);
            for (int api = CO_API_OPENAI; api <= CO_API_GEMINI; api++) {
                co_chat_response *r = NULL;
                int rc = co_chat_response_parse(&r, (co_api)api, b, strlen(b));
                if (rc) {
                    assert_int_equal(rc, CO_EPARSE);
                    continue;
                }
                for (int to = CO_API_OPENAI; to <= CO_API_GEMINI; to++) {
                    co_buf out;
                    co_buf_init(&out, 1 << 20);
                    if (co_chat_response_emit(&out, r, (co_api)to))
                        fail_msg("response emit failed: %s for %s", co_error_last(), b);
                    co_chat_response *back = NULL;
                    if (co_chat_response_parse(&back, (co_api)to, out.p, out.len))
                        fail_msg("own response rejected: %s\n%s", co_error_last(), out.p);
                    co_chat_response_free(back);
                    co_buf_free(&out);
                }
                co_chat_error e;
                co_chat_error_parse(&e, (co_api)api, 400, b, strlen(b));
                co_chat_response_free(r);
            }
            free(b);
        }
        json_decref(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_parse),
        cmocka_unit_test(test_openai_round_trip),
        cmocka_unit_test(test_anthropic_parse),
        cmocka_unit_test(test_anthropic_round_trip),
        cmocka_unit_test(test_openai_to_anthropic),
        cmocka_unit_test(test_anthropic_to_openai),
        cmocka_unit_test(test_ids_made_safe_for_anthropic),
        cmocka_unit_test(test_gemini_requests),
        cmocka_unit_test(test_response_format),
        cmocka_unit_test(test_dropped_fields),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_lossy_edges),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_response_openai_to_anthropic),
        cmocka_unit_test(test_response_anthropic_to_openai),
        cmocka_unit_test(test_response_gemini),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_rewrite_model),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_gemini_path),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_request_mutations),
        cmocka_unit_test(test_response_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
