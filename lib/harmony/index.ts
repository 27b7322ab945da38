export * from './types.js';
export {
  renderConversation,
  renderConversationAsync,
  conversationTexts,
  renderConversationText,
  renderMessageTokens,
  renderSystemContent,
  renderDeveloperContent,
  renderToolsSection,
  jsonSchemaToTypeScript,
  BROWSER_NAMESPACE,
  PYTHON_NAMESPACE,
  DEFAULT_MODEL_IDENTITY,
  DEFAULT_KNOWLEDGE_CUTOFF,
  DEFAULT_CHANNELS,
} from './render.js';
export { HarmonyStreamParser, createHarmonyParser, parseMessages, parseHeaderText } from './parse.js';
