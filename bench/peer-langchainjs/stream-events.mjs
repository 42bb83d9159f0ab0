// The pipeline of chime's seed example in real LangChain.js:
// prompt | streaming fake chat model | string (or JSON) parser, tags and
// metadata on the root; prints streamEvents v2 as JSON lines, then the
// chain's stream() chunks. FAIL=1: the model fails after 2 chunks.
import { ChatPromptTemplate } from "@langchain/core/prompts";
import { StringOutputParser, JsonOutputParser } from "@langchain/core/output_parsers";
import { FakeStreamingChatModel } from "@langchain/core/utils/testing";
import { AIMessageChunk } from "@langchain/core/messages";
import { ChatGenerationChunk } from "@langchain/core/outputs";

class FailingAfterTwo extends FakeStreamingChatModel {
  async *_streamResponseChunks(messages, options, runManager) {
    let n = 0;
    for await (const c of super._streamResponseChunks(messages, options, runManager)) {
      if (n++ === 2) throw new Error("the model failed after 2 chunks");
      yield c;
    }
  }
}
const json = process.env.PARSER === "json";
const texts = json ? ["{\"setup\": \"Why", "\", \"punchline\"", ": \"atoms\"}"]
                   : ["", "Why", " don't scientists trust atoms?\n\nBecause they make up", " everything!", ""];
const Model = process.env.FAIL ? FailingAfterTwo : FakeStreamingChatModel;
const model = new Model({ sleep: 0, chunks: texts.map((t) => new AIMessageChunk({ content: t })),
                          model: "fake-claude-3-sonnet", temperature: 0.5, maxTokens: 256 });
const prompt = ChatPromptTemplate.fromMessages([["human", "Tell me a joke"]]);
const chain = prompt.pipe(model).pipe(json ? new JsonOutputParser() : new StringOutputParser())
                    .withConfig({ tags: ["jokes"], metadata: { user: "ada" } });
try {
  for await (const e of chain.streamEvents({}, { version: "v2" }))
    console.log(JSON.stringify(e));
} catch (e) { console.log(JSON.stringify({ raised: String(e) })); }
try {
  for await (const c of await chain.stream({})) console.log(JSON.stringify({ stream: c }));
} catch (e) { console.log(JSON.stringify({ raised: String(e) })); }
