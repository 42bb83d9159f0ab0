// Callbacks LangChain.js sends under chain.stream() for the same pipeline.
import { ChatPromptTemplate } from "@langchain/core/prompts";
import { StringOutputParser } from "@langchain/core/output_parsers";
import { FakeStreamingChatModel } from "@langchain/core/utils/testing";
import { AIMessageChunk } from "@langchain/core/messages";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";

class FailingAfterTwo extends FakeStreamingChatModel {
  async *_streamResponseChunks(messages, options, runManager) {
    let n = 0;
    for await (const c of super._streamResponseChunks(messages, options, runManager)) {
      if (n++ === 2) throw new Error("the model failed after 2 chunks");
      yield c;
    }
  }
}
const seen = [];
class Rec extends BaseCallbackHandler {
  name = "rec"; awaitHandlers = true;
  handleChainStart(s, i, id, p, tags, md, rt, name) { seen.push(`chain_start:${name}:${JSON.stringify(tags)}`); }
  handleChainEnd(o, id, p, tags) { seen.push("chain_end"); }
  handleChainError() { seen.push("chain_error"); }
  handleChatModelStart(s, m, id, p, ex, tags, md) { seen.push(`chat_model_start:${JSON.stringify(md)}`); }
  handleLLMNewToken(t) { seen.push(`token:${JSON.stringify(t)}`); }
  handleLLMEnd() { seen.push("llm_end"); }
  handleLLMError() { seen.push("llm_error"); }
}
const texts = ["", "Why", " don't scientists trust atoms?\n\nBecause they make up", " everything!", ""];
for (const [label, Model] of [["ok", FakeStreamingChatModel], ["fail", FailingAfterTwo]]) {
  seen.length = 0;
  const model = new Model({ sleep: 0, chunks: texts.map((t) => new AIMessageChunk({ content: t })) });
  const chain = ChatPromptTemplate.fromMessages([["human", "Tell me a joke"]]).pipe(model)
    .pipe(new StringOutputParser()).withConfig({ tags: ["jokes"], metadata: { user: "ada" } });
  try { for await (const c of await chain.stream({}, { callbacks: [new Rec()] })); } catch (e) {}
  console.log(label, "stream():", seen.join(" | "));
  seen.length = 0;
  try { await chain.invoke({}, { callbacks: [new Rec()] }); } catch (e) {}
  console.log(label, "invoke():", seen.join(" | "));
}
