<?xml version="1.0" encoding="UTF-8"?>
<!-- The courseware Moodle book layer over Debian's docbook-xsl-ns xhtml5 chunker: one .html file
     per chapter (Moodle's Book import ignores .xhtml), named so that name order is book order
     (NN-00-<id>.html; with cw.subchapters=1 each top-level section is a subchapter,
     NN-MM-<id>_sub.html, which the import nests under its chapter), each linking the customer's CSS
     (cw.css). The build drops the book's own index.html (title page and contents: the Book activity
     makes its own). -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:d="http://docbook.org/ns/docbook"
    xmlns="http://www.w3.org/1999/xhtml"
    exclude-result-prefixes="d">

  <xsl:import href="http://docbook.sourceforge.net/release/xsl-ns/current/xhtml5/chunk.xsl"/>

  <xsl:param name="cw.subchapters" select="0"/>
  <xsl:param name="html.ext" select="'.html'"/>
  <xsl:param name="chunk.section.depth" select="$cw.subchapters"/>
  <xsl:param name="chunk.first.sections" select="$cw.subchapters"/>
  <xsl:param name="chunker.output.encoding" select="'UTF-8'"/>
  <xsl:param name="chunker.output.indent" select="'no'"/>
  <xsl:param name="suppress.navigation" select="1"/>
  <xsl:param name="generate.toc">book toc</xsl:param>
  <xsl:param name="generate.id.attributes" select="1"/>
  <xsl:param name="make.clean.html" select="1"/>
  <xsl:param name="docbook.css.link" select="0"/>
  <!-- no docbook.css written beside the output (or into the working folder, without base.dir) -->
  <xsl:param name="docbook.css.source" select="''"/>
  <xsl:param name="docbook.css.source" select="''"/>
  <xsl:param name="html.stylesheet" select="'courseware.css'"/>
  <xsl:param name="xref.with.number.and.title" select="1"/>
  <xsl:param name="generate.consistent.ids" select="1"/>
  <!-- The chunk's <title> is the chapter's own title: the Book import takes it as the chapter's. -->
  <xsl:param name="chunk.tocs.and.lots" select="0"/>

  <!-- NN: the chapter's place in the book (chapters, appendixes, a preface); MM: the section's. -->
  <xsl:template match="d:chapter|d:appendix|d:preface" mode="cw.number">
    <xsl:value-of select="format-number(count(preceding-sibling::d:chapter|preceding-sibling::d:appendix|preceding-sibling::d:preface) + 1, '00')"/>
  </xsl:template>
  <xsl:template match="*" mode="cw.name">
    <xsl:choose>
      <xsl:when test="@xml:id"><xsl:value-of select="@xml:id"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="local-name()"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="d:chapter|d:appendix|d:preface" mode="recursive-chunk-filename">
    <xsl:param name="recursive" select="false()"/>
    <xsl:apply-templates select="." mode="cw.number"/>
    <xsl:text>-00-</xsl:text>
    <xsl:apply-templates select="." mode="cw.name"/>
    <xsl:if test="not($recursive)"><xsl:value-of select="$html.ext"/></xsl:if>
  </xsl:template>

  <xsl:template match="d:sect1|d:section[parent::d:chapter or parent::d:appendix or parent::d:preface]"
                mode="recursive-chunk-filename">
    <xsl:param name="recursive" select="false()"/>
    <xsl:choose>
      <xsl:when test="$cw.subchapters != 0">
        <xsl:apply-templates select="parent::*" mode="cw.number"/>
        <xsl:text>-</xsl:text>
        <xsl:value-of select="format-number(count(preceding-sibling::d:sect1|preceding-sibling::d:section) + 1, '00')"/>
        <xsl:text>-</xsl:text>
        <xsl:apply-templates select="." mode="cw.name"/>
        <xsl:text>_sub</xsl:text>
        <xsl:if test="not($recursive)"><xsl:value-of select="$html.ext"/></xsl:if>
      </xsl:when>
      <xsl:otherwise>
        <xsl:apply-templates select="parent::*" mode="recursive-chunk-filename">
          <xsl:with-param name="recursive" select="$recursive"/>
        </xsl:apply-templates>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
