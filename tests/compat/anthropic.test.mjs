// The official `@anthropic-ai/sdk` pointed at `cutover serve` (baseURL only):
// messages, streaming, tool use and errors, each served by an Anthropic
// upstream (same vendor: fast path) and by an OpenAI upstream (cross vendor:
// translated). run.sh starts the sim and the gateway and sets CUTOVER_URL.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const BASE = process.env.CUTOVER_URL;
if (!BASE) throw new Error('CUTOVER_URL is not set: run tests/compat/run.sh');

const T = { timeout: 20_000 };
const client = (opts = {}) =>
  new Anthropic({ baseURL: BASE, apiKey: 'sk-ant-compat-client', maxRetries: 0, timeout: 15_000, ...opts });

// What the sim answers: "[MODEL/PROTOCOL] SYSTEM | LAST_USER" (+ the tool result).
const expected = (u, system, user) => `[${u.upstream}/${u.protocol}] ${system} | ${user}`;

const UPSTREAMS = [
  { label: 'same vendor (Anthropic model)', model: 'compat-claude', workload: 'via_anthropic',
    upstream: 'claude-sonnet-4', protocol: 'anthropic', err500: 'compat-claude-500', err429: 'compat-claude-429' },
  { label: 'cross vendor (OpenAI model)', model: 'compat-gpt', workload: 'via_openai',
    upstream: 'gpt-4o', protocol: 'openai', err500: 'compat-gpt-500', err429: 'compat-gpt-429' },
];

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather in a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string', description: 'City name' } },
    required: ['city'],
  },
};

async function failure(promise) {
  try {
    const v = await promise;
    assert.fail(`expected an error, got a success: ${JSON.stringify(v).slice(0, 300)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

// The body is in Anthropic's shape: {"type":"error","error":{"type":TYPE,"message":...}}.
function assertApiError(err, Cls, status, type) {
  assert.ok(err instanceof Cls,
    `expected Anthropic.${Cls.name} (${status}), got ${err?.constructor?.name}: status=${err?.status} ${err?.message}`);
  assert.equal(err.status, status);
  assert.equal(err.error?.type, 'error', `error body not in Anthropic's shape: ${JSON.stringify(err.error)}`);
  assert.equal(err.type, type, `error.type: ${JSON.stringify(err.error)}`);
  assert.equal(typeof err.error.error.message, 'string');
  assert.ok(err.error.error.message.length > 0, 'empty error message');
}

for (const u of UPSTREAMS) {
  describe(`anthropic SDK → ${u.label}`, () => {
    test('message (JSON)', T, async () => {
      const { data, response } = await client().messages.create({
        model: u.model,
        max_tokens: 64,
        system: 'Be terse.',
        messages: [{ role: 'user', content: 'Say hello' }],
        temperature: 0,
      }).withResponse();
      assert.equal(response.status, 200);
      assert.equal(data.type, 'message');
      assert.equal(data.role, 'assistant');
      assert.equal(typeof data.id, 'string');
      assert.equal(data.content.length, 1, JSON.stringify(data.content));
      assert.equal(data.content[0].type, 'text');
      assert.equal(data.content[0].text, expected(u, 'Be terse.', 'Say hello'));
      assert.equal(data.stop_reason, 'end_turn');
      assert.ok(data.usage.input_tokens > 0, `usage: ${JSON.stringify(data.usage)}`);
      assert.ok(data.usage.output_tokens > 0, `usage: ${JSON.stringify(data.usage)}`);
      assert.equal(response.headers.get('x-cutover-workload'), u.workload);
      assert.equal(response.headers.get('x-cutover-arm'), 'incumbent');
      assert.ok(response.headers.get('x-cutover-request-id'), 'no X-Cutover-Request-Id');
    });

    test('streaming events: message_start … message_stop, text and usage', T, async () => {
      const stream = await client().messages.create({
        model: u.model,
        max_tokens: 128,
        system: 'Be terse.',
        messages: [{ role: 'user', content: 'Tell me about the sea and its many colours' }],
        stream: true,
      });
      const types = [];
      let text = '', pieces = 0, stop = null, outTokens = 0, inTokens = 0;
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'message_start') inTokens = ev.message.usage?.input_tokens ?? 0;
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') { text += ev.delta.text; pieces++; }
        if (ev.type === 'message_delta') {
          stop = ev.delta.stop_reason;
          outTokens = ev.usage?.output_tokens ?? 0;
          // a translated stream may only know the prompt's size at the end:
          // message_delta's usage.input_tokens (which the SDK accumulates) is fine
          if (ev.usage?.input_tokens) inTokens = ev.usage.input_tokens;
        }
      }
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'), types.join(' '));
      assert.ok(types.indexOf('message_delta') > types.lastIndexOf('content_block_stop'), types.join(' '));
      assert.equal(text, expected(u, 'Be terse.', 'Tell me about the sea and its many colours'));
      assert.ok(pieces > 1, `the text came in ${pieces} piece(s): not streamed`);
      assert.equal(stop, 'end_turn');
      assert.ok(outTokens > 0, 'no output_tokens in message_delta');
      assert.ok(inTokens > 0, 'no input_tokens in message_start nor in message_delta');
    });

    test('streaming helper: text events and finalMessage()', T, async () => {
      const stream = client().messages.stream({
        model: u.model,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Count to three' }],
      });
      let seen = '';
      stream.on('text', (t) => { seen += t; });
      const msg = await stream.finalMessage();
      const want = `[${u.upstream}/${u.protocol}]  | Count to three`;
      assert.equal(seen, want);
      assert.equal(msg.content[0].type, 'text');
      assert.equal(msg.content[0].text, want);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.ok(msg.usage.output_tokens > 0, `usage: ${JSON.stringify(msg.usage)}`);
      assert.ok(msg.usage.input_tokens > 0, `usage: ${JSON.stringify(msg.usage)}`);
    });

    test('tool use: input is parsed JSON; the tool result yields the answer', T, async () => {
      const c = client();
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const first = await c.messages.create({ model: u.model, max_tokens: 128, messages, tools: [WEATHER_TOOL] });
      assert.equal(first.stop_reason, 'tool_use');
      const uses = first.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 1, JSON.stringify(first.content));
      const use = uses[0];
      assert.equal(use.name, 'get_weather');
      assert.equal(typeof use.id, 'string');
      assert.ok(use.id.length > 0);
      assert.equal(typeof use.input, 'object');
      assert.equal(typeof use.input.city, 'string', `input: ${JSON.stringify(use.input)}`);

      messages.push({ role: 'assistant', content: first.content });
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18C and sunny' }] });
      const second = await c.messages.create({ model: u.model, max_tokens: 128, messages, tools: [WEATHER_TOOL] });
      assert.equal(second.stop_reason, 'end_turn');
      const text = second.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
      assert.ok(!second.content.some((b) => b.type === 'tool_use'), 'called a tool again after its result');
      assert.match(text, new RegExp(`^\\[${u.upstream}/${u.protocol}\\]`));
      assert.ok(text.includes('18C and sunny'), `answer: ${text}`);
    });

    test('tool use, streamed: input_json_delta assembles into the input', T, async () => {
      const msg = await client().messages.stream({
        model: u.model,
        max_tokens: 128,
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [WEATHER_TOOL],
      }).finalMessage();
      assert.equal(msg.stop_reason, 'tool_use');
      const uses = msg.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 1, JSON.stringify(msg.content));
      assert.equal(uses[0].name, 'get_weather');
      assert.ok(uses[0].id, 'tool_use without id');
      assert.equal(typeof uses[0].input?.city, 'string', `input: ${JSON.stringify(uses[0].input)}`);
    });

    test('bad request → BadRequestError 400', T, async () => {
      const err = await failure(client().messages.create({ model: u.model, max_tokens: 16, messages: 'not a list' }));
      assertApiError(err, Anthropic.BadRequestError, 400, 'invalid_request_error');
    });

    test('upstream 500 → InternalServerError 500', T, async () => {
      const err = await failure(client().messages.create({
        model: u.err500, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
      }));
      assertApiError(err, Anthropic.InternalServerError, 500, 'api_error');
    });

    test('upstream 500 on a streaming request → InternalServerError 500', T, async () => {
      const err = await failure((async () => {
        const stream = await client().messages.create({
          model: u.err500, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream: true,
        });
        for await (const _ of stream) { /* drain */ }
      })());
      assertApiError(err, Anthropic.InternalServerError, 500, 'api_error');
    });

    test('upstream 429 → RateLimitError 429', T, async () => {
      const err = await failure(client().messages.create({
        model: u.err429, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
      }));
      assertApiError(err, Anthropic.RateLimitError, 429, 'rate_limit_error');
    });

    test('upstream 429 keeps its retry-after', T, async () => {
      const err = await failure(client().messages.create({
        model: u.err429, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
      }));
      assert.equal(err.status, 429);
      assert.equal(err.headers?.get('retry-after'), '3');
    });
  });
}

describe('anthropic SDK → workload resolution and errors', () => {
  test('unknown model alias → NotFoundError 404 naming the workloads', T, async () => {
    const err = await failure(client().messages.create({
      model: 'no-such-model', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
    }));
    assertApiError(err, Anthropic.NotFoundError, 404, 'not_found_error');
    assert.ok(err.error.error.message.includes('via_anthropic'),
      `message does not name the workloads: ${err.error.error.message}`);
  });

  test('unknown X-Cutover-Workload → NotFoundError 404', T, async () => {
    const err = await failure(client({ defaultHeaders: { 'X-Cutover-Workload': 'no_such_workload' } })
      .messages.create({ model: 'compat-claude', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }));
    assertApiError(err, Anthropic.NotFoundError, 404, 'not_found_error');
  });

  test('workload chosen by the X-Cutover-Workload header', T, async () => {
    const { data, response } = await client({ defaultHeaders: { 'X-Cutover-Workload': 'via_openai' } })
      .messages.create({ model: 'whatever-the-app-says', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-cutover-workload'), 'via_openai');
    assert.equal(data.content[0].text, '[gpt-4o/openai]  | hi');
  });

  // @anthropic-ai/sdk 1.x sends apiKey as "Authorization: Bearer"; 0.x SDKs,
  // curl users and most tools send "x-api-key": both must select the workload.
  test('workload chosen by the gateway API key (apiKey: Authorization Bearer in SDK 1.x)', T, async () => {
    const { data, response } = await client({ apiKey: process.env.COMPAT_KEY_OPENAI })
      .messages.create({ model: 'claude-sonnet-4', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-cutover-workload'), 'via_openai');
    assert.equal(data.content[0].text, '[gpt-4o/openai]  | hi');
  });

  test('workload chosen by the gateway API key (x-api-key header)', T, async () => {
    const { data, response } = await client({ apiKey: null, defaultHeaders: { 'x-api-key': process.env.COMPAT_KEY_OPENAI } })
      .messages.create({ model: 'claude-sonnet-4', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-cutover-workload'), 'via_openai');
    assert.equal(data.content[0].text, '[gpt-4o/openai]  | hi');
  });
});
