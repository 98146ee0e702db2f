'use strict';
// The public surface of rnnkit, read from its type declarations (dist/index.d.ts) with the
// TypeScript compiler: every exported function (`name`), class constructor (`new Class`), static
// method (`Class.name`), and public method or accessor (`Class#name`), namespaces included
// (`ns.name`, `new ns.Class`, `ns.Class#name`). Private and protected members are left out;
// @internal ones are in (JavaScript callers reach them); members of an unexported base class are
// listed under each exported class that inherits them. Interfaces and types have no runtime
// presence and are left out. The API fuzz must have a target for every entry.
const path = require('path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..', '..');

function memberName(symbol) {
  const name = symbol.getName();
  return name.startsWith('__@') ? `[Symbol.${name.slice(3).split('@')[0]}]` : name;
}

function isHidden(decl) {
  const flags = ts.getCombinedModifierFlags(decl);
  return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0 || (decl.name && ts.isPrivateIdentifier(decl.name));
}

/** The entries, sorted. */
function publicSurface() {
  const entry = path.join(root, 'dist', 'index.d.ts');
  const program = ts.createProgram([entry], { lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'], types: ['node'], skipLibCheck: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  const out = new Set();
  // The classes the package exports (namespaces included): a member inherited from a class that
  // is not among them (an internal base such as nn's TensorModule) is listed under each exported
  // class that inherits it, since only they reach it.
  const exported = new Set();
  const collect = (symbol) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (target.flags & ts.SymbolFlags.Class) exported.add(target.valueDeclaration);
    else if (target.flags & (ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule)) checker.getExportsOfModule(target).forEach(collect);
  };
  checker.getExportsOfModule(checker.getSymbolAtLocation(source)).forEach(collect);
  const declaredHere = (d, decl) => d.parent === decl || (ts.isClassDeclaration(d.parent) && !exported.has(d.parent));
  const visit = (symbol, prefix) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    const name = `${prefix}${symbol.getName()}`;
    if (target.flags & ts.SymbolFlags.Class) {
      out.add(`new ${name}`);
      const decl = target.valueDeclaration;
      for (const m of checker.getPropertiesOfType(checker.getTypeOfSymbolAtLocation(target, decl))) {
        if (m.getName() === 'prototype' || !m.valueDeclaration || isHidden(m.valueDeclaration) || m.valueDeclaration.parent !== decl) continue;
        if (m.flags & ts.SymbolFlags.Method) out.add(`${name}.${memberName(m)}`);
      }
      for (const m of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(target))) {
        const d = m.valueDeclaration;
        // Inherited members are listed once, under the (exported) class that declares them.
        if (!d || isHidden(d) || !declaredHere(d, decl)) continue;
        // Plain fields are data, not code: methods and accessors only.
        if (m.flags & (ts.SymbolFlags.Method | ts.SymbolFlags.GetAccessor | ts.SymbolFlags.SetAccessor)) out.add(`${name}#${memberName(m)}`);
      }
    } else if (target.flags & ts.SymbolFlags.Function) {
      out.add(name);
    } else if (target.flags & (ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule)) {
      for (const m of checker.getExportsOfModule(target)) visit(m, `${name}.`);
    }
  };
  for (const s of checker.getExportsOfModule(checker.getSymbolAtLocation(source))) visit(s, '');
  return [...out].sort();
}

module.exports = { publicSurface };

if (require.main === module) process.stdout.write(`${publicSurface().join('\n')}\n`);
